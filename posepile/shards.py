"""Sharded TFRecord files: deterministic assignment, atomic per-shard writes, checked reading.

Layout: `<out_dir>/<prefix>-<i:05d>-of-<n:05d>.tfrecord`. A shard is written to the same name
plus '.tmp' and renamed only once all its records are written and flushed, so a final name
always means a complete shard. Examples go to shards by a hash of a stable key (not by
arrival order), so a rerun after an interruption writes exactly the missing shards again and
yields no duplicate or missing example. Leftover '.tmp' files are overwritten.

TFRecord framing (per record): uint64 length, uint32 masked CRC-32C of the length bytes, data,
uint32 masked CRC-32C of the data (all little-endian).

Checking without walking every record at start-up: `record_counts` takes each shard's record
count and byte size from the build's manifest.json (one stat per shard: a truncated or replaced
file fails there, named); `read_shard` then reads a whole shard through TensorFlow's record
reader, which checks both CRCs of every record, and names the file (and byte offset) when a
record is truncated or damaged, or when the count differs from the manifest's. TensorFlow's own
DataLossError names neither. Shards that no manifest lists are counted by
`check_shard_framing`, which walks the record headers in Python (seeking over the data).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import struct
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

# TensorFlow is imported by the functions that write or read records: the rest (paths, shard
# assignment, manifest counts, framing checks) serves tools that need no TensorFlow, such as the
# --help of posepile.build (posepile/cli.py).

SHARD_SUFFIX = '.tfrecord'
TMP_SUFFIX = '.tmp'
_HEADER = struct.Struct('<QI')
_FOOTER_BYTES = 4
_MASK_DELTA = 0xA282EAD8


class CorruptShardError(IOError):
    """A shard file is truncated or damaged; the message names the file."""


MANIFEST_NAME = 'manifest.json'
# posepile.build writes OUT/manifest.json and the shards to OUT/<dataset>/<split>/.
_MANIFEST_LEVELS_UP = 3


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """A complete shard: `path`, its number of records, the sha256 hex digest and the size in
    bytes of the file."""
    path: pathlib.Path
    num_records: int
    sha256: str
    num_bytes: int


def shard_paths(out_dir: str | os.PathLike, num_shards: int,
                prefix: str = 'examples') -> list[pathlib.Path]:
    if num_shards < 1:
        raise ValueError(f'num_shards must be >= 1, got {num_shards}')
    out_dir = pathlib.Path(out_dir)
    return [out_dir / f'{prefix}-{i:05d}-of-{num_shards:05d}{SHARD_SUFFIX}'
            for i in range(num_shards)]


def assign_shards(keys: Sequence[str], num_shards: int) -> np.ndarray:
    """[N] int64 shard index per example key, stable across runs and machines (sha1, not hash())."""
    return np.array([int.from_bytes(hashlib.sha1(k.encode('utf-8')).digest()[:8], 'little')
                     % num_shards for k in keys], np.int64)


class ShardWriter:
    """Writes the shards of one output directory, each atomically (see module docstring).

    Usage:
        writer = ShardWriter(out_dir, num_shards)
        for i in writer.missing_shards():
            writer.write_shard(i, records_of_shard_i)
    """

    def __init__(self, out_dir: str | os.PathLike, num_shards: int, prefix: str = 'examples'):
        self.out_dir = pathlib.Path(out_dir)
        self.num_shards = int(num_shards)
        self.paths = shard_paths(self.out_dir, self.num_shards, prefix)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def is_complete(self, index: int) -> bool:
        return self.paths[index].exists()

    def missing_shards(self) -> list[int]:
        return [i for i in range(self.num_shards) if not self.is_complete(i)]

    def write_shard(self, index: int, records: Iterable[bytes]) -> ShardInfo:
        """Writes all `records` as shard `index` (to '.tmp', then renamed). If `records` raises,
        the '.tmp' stays behind and no final file appears."""
        import tensorflow as tf
        path = self.paths[index]
        tmp = path.with_name(path.name + TMP_SUFFIX)
        count = 0
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for record in records:
                writer.write(record)
                count += 1
            writer.flush()
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        digest = file_sha256(tmp)
        os.replace(tmp, path)
        return ShardInfo(path, count, digest, os.path.getsize(path))

    def shard_info(self, index: int) -> ShardInfo:
        """Info of a complete shard (counts records by walking the framing)."""
        path = self.paths[index]
        return ShardInfo(path, check_shard_framing(path), file_sha256(path),
                         os.path.getsize(path))


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------ reading
def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) in pure Python: only for the 8-byte record headers."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def check_shard_framing(path: str | os.PathLike) -> int:
    """Walks the record headers of one TFRecord file; returns its number of records.

    Raises:
        CorruptShardError naming the file and byte offset if a header's CRC is wrong or the file
        ends inside a record. (Data CRCs are not checked here; see `read_shards`.)
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    count, offset = 0, 0
    with open(path, 'rb') as f:
        while offset < size:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise CorruptShardError(f'{path}: truncated record header at byte {offset} '
                                        f'(file has {size} bytes)')
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise CorruptShardError(f'{path}: corrupt record header (length CRC mismatch) '
                                        f'at byte {offset}')
            end = offset + _HEADER.size + length + _FOOTER_BYTES
            if end > size:
                raise CorruptShardError(f'{path}: truncated record at byte {offset}: needs '
                                        f'{end - offset} bytes, file ends after {size - offset}')
            f.seek(end)
            offset = end
            count += 1
    return count


def record_counts(paths: Sequence[str | os.PathLike]) -> list[int]:
    """Records per shard, at O(shards) cost: from the manifest.json of the build that wrote
    them (in the shard's directory or up to three levels above, where `posepile.build` puts
    it), after checking each file's size against the manifest's `num_bytes`. A shard no
    manifest lists is counted by `check_shard_framing` (O(records)).

    Raises:
        CorruptShardError naming the file if its size differs from the manifest's (truncated or
        replaced), or, for unlisted shards, if its framing is damaged.
    """
    manifests: dict[pathlib.Path, dict[str, dict] | None] = {}
    counts = []
    for path in paths:
        entry, manifest_path = _manifest_entry(pathlib.Path(path).absolute(), manifests)
        if entry is None:
            counts.append(check_shard_framing(path))
            continue
        size = os.path.getsize(path)
        # Manifests from before num_bytes was recorded give the count only: then a truncated
        # file is caught when read (read_shard checks the count).
        if entry.get('num_bytes', size) != size:
            raise CorruptShardError(
                f'{os.fspath(path)}: {size} bytes on disk, but {manifest_path} records '
                f'{entry["num_bytes"]} (truncated or replaced since the build)')
        counts.append(int(entry['num_examples']))
    return counts


def _manifest_entry(path: pathlib.Path, cache: dict) -> tuple[dict | None, pathlib.Path | None]:
    """The manifest's shard entry for `path` (and the manifest's path), or (None, None)."""
    directory = path.parent
    for _ in range(_MANIFEST_LEVELS_UP + 1):
        if directory not in cache:
            manifest_path = directory / MANIFEST_NAME
            cache[directory] = None
            if manifest_path.is_file():
                try:
                    manifest = json.loads(manifest_path.read_text())
                    cache[directory] = {shard['file']: shard for shard in manifest['shards']}
                except (ValueError, KeyError, TypeError) as error:
                    raise ValueError(f'{manifest_path}: not a posepile manifest ({error})') \
                        from error
        shards = cache[directory]
        if shards is not None:
            entry = shards.get(path.relative_to(directory).as_posix())
            if entry is not None:
                return entry, directory / MANIFEST_NAME
        if directory.parent == directory:
            break
        directory = directory.parent
    return None, None


def read_shard(path: str | os.PathLike, expected_records: int | None = None) -> list[bytes]:
    """All serialized records of one shard, every length and data CRC checked (TensorFlow's
    record reader).

    Raises:
        CorruptShardError naming the file (and TensorFlow's byte offset) for a truncated or
        damaged record, or if the file holds another number of records than `expected_records`.
    """
    import tensorflow as tf
    path = os.fspath(path)
    try:
        records = list(_record_iterator(path))
    except tf.errors.DataLossError as error:
        raise CorruptShardError(f'{path}: {error.message}') from error
    if expected_records is not None and len(records) != expected_records:
        raise CorruptShardError(f'{path}: holds {len(records)} records, but its manifest says '
                                f'{expected_records} (truncated or replaced since the build)')
    return records


def _record_iterator(path: str):
    # The C++ record reader behind tf.data, without a tf.data pipeline (this runs inside one,
    # in tf.numpy_function). Deprecated in TF 2 only in favour of tf.data.
    import tensorflow as tf
    return tf.compat.v1.io.tf_record_iterator(path)


def read_shard_tensor(path: tf.Tensor, expected_records: tf.Tensor) -> tf.Tensor:
    """Graph twin of `read_shard`: scalar tf.string path, scalar int64 count -> [N] tf.string.
    A corrupt shard stops the pipeline with an error whose message holds CorruptShardError's."""
    import tensorflow as tf

    def read(path_bytes, count):
        return np.array(read_shard(path_bytes.decode('utf-8'), int(count)), dtype=object)

    records = tf.numpy_function(read, [path, expected_records], tf.string, stateful=False)
    records.set_shape([None])
    return records


def read_shards(paths: Sequence[str | os.PathLike]) -> Iterator[bytes]:
    """Yields the serialized records of the files in order, checking every CRC and, for shards
    a manifest lists, the size and record count.

    Raises:
        CorruptShardError naming the file for a truncated or damaged shard.
    """
    for path, count in zip(paths, record_counts(paths)):
        yield from read_shard(path, count)


def make_dataset(paths: Sequence[str | os.PathLike], parse_fn=None,
                 num_parallel_reads: int | None = None) -> tf.data.Dataset:
    """tf.data dataset of the shards' records in file order (parsed by `parse_fn` if given;
    `num_parallel_reads` shards read at once, interleaved).

    Start-up costs one stat per shard (`record_counts`); each shard is read whole by
    `read_shard_tensor` when its turn comes, so a truncated or damaged shard stops the pipeline
    with an error naming the file.
    """
    import tensorflow as tf
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError('make_dataset: no shard paths given')
    counts = record_counts(paths)
    shards = tf.data.Dataset.from_tensor_slices((paths, np.asarray(counts, np.int64)))
    def records(path, count):
        return tf.data.Dataset.from_tensor_slices(read_shard_tensor(path, count))

    if num_parallel_reads:
        dataset = shards.interleave(records, cycle_length=num_parallel_reads,
                                    num_parallel_calls=num_parallel_reads, deterministic=True)
    else:
        dataset = shards.flat_map(records)
    if parse_fn is not None:
        dataset = dataset.map(parse_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset


def verify_shards(paths: Sequence[str | os.PathLike]) -> list[int]:
    """Reads every record of every file; returns record counts; CorruptShardError names a file."""
    return [len(read_shard(path, count)) for path, count in zip(paths, record_counts(paths))]
