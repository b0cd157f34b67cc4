"""The synthetic multi-skeleton world: the project's embedded default dataset.

Hidden bodies (`body`: 25-joint kinematic tree, 99 hidden points, random proportions) move
through smooth, joint-limited motions (`poses`). Six skeleton formats (`formats`, weights in
`format_weights`) label them as different affine combinations of the hidden points, and five
datasets (`world`) see them through their own cameras (`cameras`), rendered as shaded capsules
(`render`). `python -m posepile.synthetic --out DIR --num N --seed S` writes the world in the
layout of `raw_format`; `posepile.datasets.synthetic` converts it; `ground_truth` loads the
test split's all-format ground truth and the ground-truth affine maps between formats.
"""
