"""Writers of datasets in their authors' real on-disk formats, filled with rendered synthetic
people whose 3D joints are known (posepile/dataset_writers/people.py).

One module per dataset, named after its converter in posepile/datasets/. Each writes a tiny
dataset under a directory exactly as the release lays it out (file names, containers, units,
conventions) and returns what it wrote (cameras, joints, images, masks), so that

- the converter tests (tests/test_dataset_<name>.py) read it back and compare every number, and
- the rehearsal (`python -m rehearsal`, ./run.sh rehearsal) runs the whole production pipeline
  (posepile.build_all -> posepile.mix -> metrabs.train -> ... -> eval.run) on the datasets of the
  paper's mix and the four benchmarks, without the real data.

The writers follow each format's documentation (docs/datasets/<name>.md) independently of the
converters, so a converter that misreads a field disagrees with its writer.
"""
