"""Sharded TFRecord files: deterministic assignment, atomic per-shard writes, checked reading.

Layout: `<out_dir>/<prefix>-<i:05d>-of-<n:05d>.tfrecord`. A shard is written to the same name
plus '.tmp' and renamed only once all its records are written and flushed, so a final name
always means a complete shard. Examples go to shards by a hash of a stable key (not by
arrival order), so a rerun after an interruption writes exactly the missing shards again and
yields no duplicate or missing example. Leftover '.tmp' files are overwritten.

TFRecord framing (per record): uint64 length, uint32 masked CRC-32C of the length bytes, data,
uint32 masked CRC-32C of the data (all little-endian). `check_shard_framing` walks these headers in
Python (fast: it seeks over the data), so truncation and damaged headers are reported with the
file name before TensorFlow, whose DataLossError does not say which file, reads it.
`read_shards` also checks the data CRCs (via TensorFlow, one file at a time, naming the file).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import struct
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

SHARD_SUFFIX = '.tfrecord'
TMP_SUFFIX = '.tmp'
_HEADER = struct.Struct('<QI')
_FOOTER_BYTES = 4
_MASK_DELTA = 0xA282EAD8


class CorruptShardError(IOError):
    """A shard file is truncated or damaged; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """A complete shard: `path`, its number of records and the sha256 hex digest of the file."""
    path: pathlib.Path
    num_records: int
    sha256: str


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
        return ShardInfo(path, count, digest)

    def shard_info(self, index: int) -> ShardInfo:
        """Info of a complete shard (counts records by walking the framing)."""
        path = self.paths[index]
        return ShardInfo(path, check_shard_framing(path), file_sha256(path))


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


def read_shards(paths: Sequence[str | os.PathLike]) -> Iterator[bytes]:
    """Yields the serialized records of the files in order, checking every CRC.

    Raises:
        CorruptShardError naming the file for a truncated or damaged shard.
    """
    for path in paths:
        check_shard_framing(path)
        try:
            for record in tf.data.TFRecordDataset(os.fspath(path)).as_numpy_iterator():
                yield record
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as error:
            raise CorruptShardError(f'{os.fspath(path)}: {error.message}') from error


def make_dataset(paths: Sequence[str | os.PathLike], parse_fn=None, check_framing: bool = True,
                 num_parallel_reads: int | None = None) -> tf.data.Dataset:
    """tf.data dataset of the shards' records (parsed by `parse_fn` if given).

    With `check_framing`, every file's framing is checked on creation, so truncated or damaged
    headers fail here with the file name. A damaged record body surfaces later as TensorFlow's
    DataLossError; `read_shards` or `verify_shards` then names the file.
    """
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError('make_dataset: no shard paths given')
    if check_framing:
        for path in paths:
            check_shard_framing(path)
    dataset = tf.data.TFRecordDataset(paths, num_parallel_reads=num_parallel_reads)
    if parse_fn is not None:
        dataset = dataset.map(parse_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset


def verify_shards(paths: Sequence[str | os.PathLike]) -> list[int]:
    """Reads every record of every file; returns record counts; CorruptShardError names a file."""
    counts = []
    for path in paths:
        counts.append(sum(1 for _ in read_shards([path])))
    return counts
