"""The rehearsal: the production pipeline of the paper, end to end, on synthetic people written in
the real on-disk format of every dataset it uses (`python -m rehearsal`, `./run.sh rehearsal`).

The 28 training datasets and the 2D datasets of configs/mix_paper28.json and the four benchmark
test sets are written by posepile.dataset_writers (real file formats, the datasets' own skeletons,
rendered people); then the real commands run on them, each in its own process, exactly as a user
with the data would run them:

    posepile.build_all (the real converters) -> posepile.mix (configs/mix_paper28.json, fewer rows
    per batch) -> metrabs.train (the paper config; CPU overrides for backbone, size and steps only)
    -> metrabs.pseudo_gt -> acae.train -> metrabs.train (one fine-tuning) -> metrabs.export ->
    eval.run on H36M, 3DPW, MPI-INF-3DHP and MuPoTS-3D.

Between the stages, wiring checks (rehearsal/checks.py) stop the run with a message naming the
dataset, joint or file when the pieces do not fit: a converter's joints missing from the union or
from the model's outputs, a dataset of the mix that the build tree does not hold, a benchmark
joint the exported model does not output. The run ends with a table of examples per dataset and
per stage and the time of every stage (rehearsal/summary.py).

Modules: sizes.py (the run sizes and the CPU overrides), datasets.py (what is written and how it
is built), checks.py, stages.py (one function per stage), summary.py, __main__.py (the CLI).
This package sits above every other one: it only runs their commands and reads their outputs.
"""
