"""How a trained model is described on disk: its ModelConfig and joint names as JSON files.

A training logdir holds config.json (a TrainConfig JSON, whose 'model' object is the
ModelConfig) and joint_names.json next to checkpoints/; an exported SavedModel holds
assets/model_config.json and assets/joint_names.json. Training (checkpointing, fine-tuning
initialisation), export and pseudo-GT all read and write them through this module.
Joints of user-defined skeleton formats (posepile.joints.register_skeleton) come with
skeletons.json (logdir) / assets/skeletons.json (export): the definitions, registered again by
whoever reads the joint names, so a fresh process knows those skeletons.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from metrabs.model.config import ModelConfig
from posepile import joints as joint_registry

MODEL_CONFIG_ASSET = 'model_config.json'

JOINT_NAMES_ASSET = 'joint_names.json'

SKELETONS_FILE = 'skeletons.json'


def find_nearby(prefix: str, filename: str) -> pathlib.Path | None:
    """`filename` next to a checkpoint prefix or in its parent (the training logdir), if any."""
    directory = pathlib.Path(prefix).parent
    for candidate in (directory / filename, directory.parent / filename):
        if candidate.is_file():
            return candidate
    return None


def read_json(path) -> object:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON: {e}') from e


def load_model_config(path) -> ModelConfig:
    """ModelConfig from a ModelConfig JSON object or a TrainConfig JSON (its 'model' field)."""
    d = read_json(path)
    if not isinstance(d, dict):
        raise ValueError(f'{path}: the top level must be a JSON object')
    if isinstance(d.get('model'), dict):
        d = d['model']
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise KeyError(f'{path}: unknown ModelConfig fields {unknown}')
    return ModelConfig(**d)


def joint_names_of_set(name: str) -> list[str]:
    """The model joints of a union ('real', 'synthetic', 'all': the joints some 3D format labels;
    2D-only joints are no model outputs) or the union joints of one registered skeleton."""
    if name in joint_registry.UNIONS:
        return list(joint_registry.three_d_union_names(name))
    return joint_registry.union_names(name)


def load_joint_names(path) -> list[str]:
    names = read_json(path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise ValueError(f'{path}: must hold a non-empty JSON list of joint name strings')
    return names


def write_skeleton_definitions(directory: str | os.PathLike, joint_names) -> None:
    """Writes directory/skeletons.json with the user-defined formats among `joint_names` (none:
    no file)."""
    from posepile.atomic_io import write_json_atomic
    definitions = joint_registry.user_skeleton_definitions(joint_names)
    if definitions:
        write_json_atomic(pathlib.Path(directory) / SKELETONS_FILE, definitions)


def register_skeletons_nearby(prefix: str) -> None:
    """Registers the skeletons.json next to a checkpoint prefix or in its logdir, if any."""
    path = find_nearby(prefix, SKELETONS_FILE)
    if path is not None:
        definitions = read_json(path)
        if not isinstance(definitions, list):
            raise ValueError(f'{path}: must hold a JSON list of skeleton definitions')
        for definition in definitions:
            joint_registry.register_skeleton(definition)


def write_model_description(model, saved_model_dir: str | os.PathLike):
    """Writes <dir>/assets/model_config.json (model.config, a ModelConfig) and joint_names.json
    (model.joint_names as a JSON list).

    The SavedModel itself does not record how its crop model was built; these files let
    metrabs.training.checkpointing rebuild it to map the exported variables back onto Keras weights.
    """
    assets = pathlib.Path(saved_model_dir) / 'assets'
    assets.mkdir(parents=True, exist_ok=True)
    (assets / MODEL_CONFIG_ASSET).write_text(
        json.dumps(dataclasses.asdict(model.config), indent=2), encoding='utf-8')
    (assets / JOINT_NAMES_ASSET).write_text(
        json.dumps(list(model.joint_names)), encoding='utf-8')
    write_skeleton_definitions(assets, model.joint_names)
