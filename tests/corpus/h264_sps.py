"""Rewrite the picture size an H.264 stream declares, to craft 'huge resolution' inputs cheaply.

Encoding a real 16384x16384 frame takes seconds and ~400 MB; a decoder only learns the size from the
sequence parameter set (SPS), so rewriting ``pic_width_in_mbs_minus1`` / ``pic_height_in_map_units_minus1``
in a tiny stream's SPS gives the same first impression. Only SPSs without scaling matrices are handled
(x264's default, any profile).
"""

from __future__ import annotations

import re

HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
NAL_SPS = 7


class _Bits:
    """A cursor over a string of '0'/'1' characters (an SPS is a few dozen bytes)."""

    def __init__(self, bits: str) -> None:
        self.bits, self.pos = bits, 0

    def u(self, count: int) -> int:
        value = int(self.bits[self.pos:self.pos + count], 2)
        self.pos += count
        return value

    def ue(self) -> int:
        zeros = self.bits.index("1", self.pos) - self.pos
        self.pos += zeros
        return self.u(zeros + 1) - 1

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def _ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _unescape(payload: bytes) -> bytes:
    return re.sub(b"\x00\x00\x03", b"\x00\x00", payload)


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _skip_to_size_fields(bits: _Bits) -> None:
    """Advance past every SPS field that precedes the picture size."""
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    if profile in HIGH_PROFILES:
        if bits.ue() == 3:  # chroma_format_idc
            bits.u(1)
        bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if bits.u(1):
            raise ValueError("SPS with scaling matrices is not supported")
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1), bits.se(), bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue(), bits.u(1)  # max_num_ref_frames, gaps_in_frame_num_allowed


def _resize_sps(rbsp: bytes, width: int, height: int) -> bytes:
    bits = _Bits("".join(f"{byte:08b}" for byte in rbsp))
    _skip_to_size_fields(bits)
    head = bits.bits[:bits.pos]
    bits.ue(), bits.ue()
    tail = bits.bits[bits.pos:].rstrip("0")[:-1]  # drop the rbsp stop bit and its padding
    new = head + _ue(width // 16 - 1) + _ue(height // 16 - 1) + tail + "1"
    new += "0" * (-len(new) % 8)
    return int(new, 2).to_bytes(len(new) // 8, "big")


def declare_resolution(annexb: bytes, width: int, height: int) -> bytes:
    """Return the Annex-B stream with every SPS declaring ``width`` x ``height`` (multiples of 16)."""
    parts = re.split(b"(\x00\x00\x01)", annexb)
    for index in range(2, len(parts), 2):
        nal = parts[index]
        if nal and nal[0] & 0x1F == NAL_SPS:
            trailing = len(nal) - len(nal.rstrip(b"\x00"))  # zero byte of the next 4-byte start code
            body = _resize_sps(_unescape(nal[1:len(nal) - trailing]), width, height)
            parts[index] = nal[:1] + _escape(body) + b"\x00" * trailing
    return b"".join(parts)
