# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of fsd/codec's pure-Python modules (the specification; property tests prove the two produce
identical results), one include file per job: keys, values, rows, response framing, request splitting, and the
point-in-time as-of kernel. Wire field numbers come from wire_fields.pxi, checked against the proto descriptors."""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t, uint32_t, uint8_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

import numpy as np
cimport numpy as cnp

cnp.import_array()

DEF KEY_FORMAT = 0x01
DEF VALUE_FORMAT = 0x01
DEF HEADER_SIZE = 19
DEF FLAG_NULL = 0x01
DEF MAX_KEY_STRING_BYTES = 1024
DEF INT64 = 1
DEF DOUBLE = 2
DEF FLOAT = 3
DEF BOOL = 4
DEF STRING = 5
DEF BYTES = 6
DEF FLOAT_VECTOR = 7
DEF STATUS_PRESENT = 1
DEF STATUS_NOT_FOUND = 2
DEF STATUS_STALE = 3
DEF ROW_FORMAT = 0x01
DEF ROW_HEAD = 3
DEF ENTRY_HEAD = 8
DEF MAX_ENTRIES = 0xFFFF

include "wire_fields.pxi"

cdef inline void _put_u32_be(char* p, uint32_t v) noexcept nogil:
    p[0] = <char>((v >> 24) & 0xFF)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef inline void _put_u64_be(char* p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <char>((v >> (56 - 8 * i)) & 0xFF)


cdef inline void _put_i64_le(char* p, int64_t v) noexcept nogil:
    memcpy(p, &v, 8)  # x86-64 and aarch64 are little-endian; setup.py refuses big-endian builds


cdef inline int64_t _get_i64_le(const char* p) noexcept nogil:
    cdef int64_t v
    memcpy(&v, p, 8)
    return v


include "keys.pxi"
include "values.pxi"
include "rows.pxi"
include "response.pxi"
include "asof.pxi"
include "request.pxi"
include "tiles.pxi"
include "computed_offline.pxi"
