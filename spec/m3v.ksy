meta:
  id: m3v
  title: M3-CVC ultra-low-bitrate video bitstream (.m3v), version 1.x (written for 1.3)
  file-extension: m3v
  license: Apache-2.0
  ks-version: '0.11'
  endian: le
doc: |
  The container syntax of an `.m3v` stream (M3-CVC: controllable video compression with
  multimodal generative models): an 8-byte signature, then chunks. Each chunk is a type
  byte, a LEB128 payload length, the payload and a CRC-32C. HEAD holds the stream header,
  one CLIP chunk holds each clip (its keyframe text D^F, clip text D^C and VQ index map
  K*, as sub-chunks), INDX and TAIL close a complete stream. Since 1.2 an ancillary PRMT
  chunk may record the prompts of the dialogue that wrote the descriptions.

  This description is informative: spec/m3v.md is normative, and where the two disagree
  the text is right. It describes syntax only. Coded payloads (texts, index maps,
  HEAD metadata) are byte blobs here; their codecs are in spec/text-codecs.md and
  spec/entropy-coding.md. The PRMT payload is parsed as the MessagePack value it is
  (type `msgpack`); which keys it must hold (§4.3) is not checked. What Kaitai Struct cannot express is left to the reader:
  the CRC-32C of each chunk (§1.3, §4.2) is exposed but not checked; the order of chunks
  (§2), the value ranges and the work limit (§11) and the cross-field rules of the "Semantics" sections are
  not checked, nor that INDX and TAIL payloads end after their last field. LEB128
  numbers are checked for length and minimality (§1.2), the signature byte for byte
  (§3), HEAD's major version (§10) and TAIL's payload length (§8); sub-chunks end exactly
  at the end of their CLIP payload (§6.3) or the parse fails.
doc-ref: spec/m3v.md

seq:
  - id: signature
    contents: [0x8b, "M3V", 0x0d, 0x0a, 0x1a, 0x0a]
    doc: |
      8B, "M3V", CR LF, 1A, LF: bit 7 of the first byte catches 7-bit channels, CR LF and
      the lone LF catch line-ending conversion either way, 1A stops a DOS `type`.
    doc-ref: spec/m3v.md §3
  - id: chunks
    type: chunk
    repeat: eos
    doc: |
      HEAD, then CLIP and ancillary chunks, then INDX and TAIL in a complete stream
      (an unterminated stream ends after its last clip).
    doc-ref: spec/m3v.md §2, §4

instances:
  version_minor:
    value: chunks[0].payload.as<head>.version_minor
    doc: |
      HEAD's `version_minor` (the first chunk is HEAD). Type 0x80 is PRMT only in a stream of
      version 1.2 or later; before 1.2 it was free, and its payload stays bytes.
    doc-ref: spec/m3v.md §4.3

types:
  leb128:
    doc: |
      Unsigned LEB128 number of at most `max_len` bytes: the spec's descriptor
      `leb128(n)` is `leb128(n)` here, and its plain `leb128` is `leb128(9)` (values
      below 2^63). Bytes b0, b1, ... bk each carry 7 value bits (bits 0-6), least
      significant group first; bit 7 is 1 in every byte but the last, and
      value = sum of (bi & 0x7F) << (7 * i). Validation rejects a number longer than
      `max_len` bytes without reading past its `max_len`-th byte, and a non-minimal one
      (a last byte 0x00 that is not the only byte). At most 10 bytes (`leb128(10)`, the
      CLIP seed, is the longest descriptor).
    doc-ref: spec/m3v.md §1.2
    params:
      - id: max_len
        type: u1
        doc: the n of `leb128(n)`, 1..10
    seq:
      - id: b0
        type: u1
        valid:
          expr: _ < 0x80 or max_len > 1
      - id: b1
        type: u1
        if: more0
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 2)
      - id: b2
        type: u1
        if: more1
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 3)
      - id: b3
        type: u1
        if: more2
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 4)
      - id: b4
        type: u1
        if: more3
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 5)
      - id: b5
        type: u1
        if: more4
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 6)
      - id: b6
        type: u1
        if: more5
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 7)
      - id: b7
        type: u1
        if: more6
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 8)
      - id: b8
        type: u1
        if: more7
        valid:
          expr: _ != 0 and (_ < 0x80 or max_len > 9)
      - id: b9
        type: u1
        if: more8
        valid:
          expr: _ != 0 and _ < 0x80
    instances:
      # moreN: byte N has its continuation bit set, so byte N+1 follows.
      more0:
        value: b0 >= 0x80
      more1:
        value: more0 and b1 >= 0x80
      more2:
        value: more1 and b2 >= 0x80
      more3:
        value: more2 and b3 >= 0x80
      more4:
        value: more3 and b4 >= 0x80
      more5:
        value: more4 and b5 >= 0x80
      more6:
        value: more5 and b6 >= 0x80
      more7:
        value: more6 and b7 >= 0x80
      more8:
        value: more7 and b8 >= 0x80
      # groupN: the value bits of byte N in place, 0 when byte N is absent.
      group0:
        value: b0 & 0x7f
      group1:
        value: 'more0 ? (b1 & 0x7f) << 7 : 0'
      group2:
        value: 'more1 ? (b2 & 0x7f) << 14 : 0'
      group3:
        value: 'more2 ? (b3 & 0x7f) << 21 : 0'
      group4:
        value: 'more3 ? (b4 & 0x7f) << 28 : 0'
      group5:
        value: 'more4 ? (b5 & 0x7f) << 35 : 0'
      group6:
        value: 'more5 ? (b6 & 0x7f) << 42 : 0'
      group7:
        value: 'more6 ? (b7 & 0x7f) << 49 : 0'
      group8:
        value: 'more7 ? (b8 & 0x7f) << 56 : 0'
      group9:
        value: 'more8 ? (b9 & 0x7f) << 63 : 0'
      value:
        value: >-
          group0 | group1 | group2 | group3 | group4
          | group5 | group6 | group7 | group8 | group9
        doc: the number (groups do not overlap, so `|` is their sum)
      len:
        value: >-
          1 + (more0 ? 1 : 0) + (more1 ? 1 : 0) + (more2 ? 1 : 0) + (more3 ? 1 : 0)
          + (more4 ? 1 : 0) + (more5 ? 1 : 0) + (more6 ? 1 : 0) + (more7 ? 1 : 0)
          + (more8 ? 1 : 0)
        doc: number of bytes the encoding takes

  chunk:
    doc: |
      A chunk: type, payload length, payload, CRC. Bit 7 of the type marks an ancillary
      chunk, which a reader that does not know it skips; a critical type it does not
      know is an error for a reader (not for this description, which reads its payload
      as bytes).
    doc-ref: spec/m3v.md §4
    seq:
      - id: chunk_type
        type: u1
        enum: chunk_type
        doc: 0x01-0x04 critical and defined; 0x00, 0x05-0x7F reserved; 0x80-0xFF ancillary
        doc-ref: spec/m3v.md §4.2
      - id: chunk_length
        type: leb128(4)
        doc: number of payload bytes, below 2^28
        valid:
          expr: chunk_type != chunk_type::tail or _.value == 12
      - id: payload
        size: chunk_length.value
        type:
          # 0x80 before 1.2 was not PRMT: 0x100 matches no case, so that payload stays bytes
          switch-on: 'chunk_type == chunk_type::prmt and _root.version_minor < 2 ? 0x100 : type_code'
          cases:
            0x01: head
            0x02: clip
            0x03: indx
            0x04: tail
            0x80: prmt
        doc: |
          the payload; PRMT (in a stream of version 1.2 or later) as its MessagePack map, other
          types (reserved, ancillary) stay bytes
      - id: crc
        type: u4
        doc: |
          CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final
          XOR 0xFFFFFFFF) of `chunk_type`, `chunk_length` as encoded and `payload`; not
          checked here.
        doc-ref: spec/m3v.md §1.3, §4.1
    instances:
      type_code:
        value: chunk_type.to_i
        doc: the type byte as a number (also for types the enum does not name)
      is_ancillary:
        value: (type_code & 0x80) != 0
        doc: bit 7 of the type
        doc-ref: spec/m3v.md §4.2
      size:
        value: 1 + chunk_length.len + chunk_length.value + 4
        doc: bytes of the whole chunk (TAIL's `index_size` is this for INDX)

  head:
    doc: The stream header; the first chunk, exactly once.
    doc-ref: spec/m3v.md §5
    seq:
      - id: version_major
        type: u1
        valid: 1
        doc: 1; a reader rejects another major version, whose HEAD this does not describe
        doc-ref: spec/m3v.md §10
      - id: version_minor
        type: u1
        doc: |
          2 in a stream with a PRMT chunk (1.2), 1 in any other a 1.2 writer makes; a higher one
          may append `extension` bytes
        doc-ref: spec/m3v.md §10
      - id: width
        type: leb128(9)
        doc: frame width in pixels, 1..65535
      - id: height
        type: leb128(9)
        doc: frame height in pixels, 1..65535
      - id: fps_num
        type: leb128(9)
        doc: frame rate numerator, 1..2^32-1
      - id: fps_den
        type: leb128(9)
        doc: frame rate denominator, 1..2^32-1
      - id: time_base_num
        type: leb128(9)
        doc: time base (seconds a tick) numerator, 1..2^32-1
      - id: time_base_den
        type: leb128(9)
        doc: time base denominator, 1..2^32-1
      - id: frame_count
        type: leb128(9)
        doc: total frames, 0 = unknown; at most 2^40-1
      - id: pack_id_length
        type: leb128(9)
        doc: 1..64
      - id: pack_id
        type: str
        size: pack_id_length.value
        encoding: ASCII
        doc: the model pack, `[a-z0-9][a-z0-9._-]*` ("none", "lite", "full" or a dotted id)
        doc-ref: spec/m3v.md §5.3
      - id: pack_hash
        size: 32
        doc: SHA-256 of the pack's weights; all zero = unspecified
        doc-ref: spec/m3v.md §5.3
      - id: grid_h
        type: leb128(9)
        doc: index-map rows, 1..1024
      - id: grid_w
        type: leb128(9)
        doc: index-map columns, 1..1024 (grid_h * grid_w at most 2^18)
      - id: vocab_size
        type: leb128(9)
        doc: VQ vocabulary size, 1..4096
      - id: text_codec
        type: u1
        enum: text_codec
        doc: codec of every text sub-chunk of the stream
        doc-ref: spec/text-codecs.md §2
      - id: default_mode
        type: u1
        enum: mode
        doc: informative; each clip carries its own mode
      - id: stream_seed
        type: u8
        doc: base of every clip's decode seed
        doc-ref: spec/m3v.md §6.4
      - id: prior_count
        type: leb128(9)
        doc: 0 (no prior) or `vocab_size`
      - id: prior
        type: leb128(9)
        repeat: expr
        repeat-expr: prior_count.value
        doc: index statistics for the index-map coders, each 0..2^24-1
        doc-ref: spec/entropy-coding.md
      - id: metadata_length
        type: leb128(9)
        doc: 0..2^20
      - id: metadata
        size: metadata_length.value
        doc: a MessagePack map with string keys, informative
        doc-ref: spec/m3v.md §5.4
      - id: extension
        size-eos: true
        doc: |
          fields of later minor versions: empty in a stream of the reader's minor version or lower, ignored in a stream of
          a higher minor version
        doc-ref: spec/m3v.md §5.2, §10

  clip:
    doc: One clip; clips are numbered 0, 1, 2, ... and cover the frames without gaps.
    doc-ref: spec/m3v.md §6
    seq:
      - id: clip_index
        type: leb128(9)
        doc: 0, 1, 2, ... in stream order
      - id: first_frame
        type: leb128(9)
        doc: number of the clip's first frame, its keyframe
      - id: frame_count
        type: leb128(9)
        doc: frames in the clip, >= 1
      - id: flags
        type: u1
        doc: bit 0 mode (0 interpolation, 1 prediction); bit 1 `seed` present; bits 2-7 reserved
        doc-ref: spec/m3v.md §6.1, §6.2
      - id: seed
        type: leb128(10)
        if: has_seed
        doc: re-rolls this clip's generation, 0..2^64-1 (0 when absent)
        doc-ref: spec/m3v.md §6.4
      - id: sub_chunks
        type: sub_chunk
        repeat: eos
        doc: until exactly the end of the payload
        doc-ref: spec/m3v.md §6.3
    instances:
      mode:
        value: flags & 1
        enum: mode
        doc: reconstruction mode
      has_seed:
        value: (flags & 2) != 0

  sub_chunk:
    doc: |
      A sub-chunk of a CLIP payload: a tag holding the body length and kind, then the
      body. Bit 3 of the kind marks an ancillary sub-chunk. Covered by the CRC of its
      CLIP chunk; it has none of its own.
    doc-ref: spec/m3v.md §6.3
    seq:
      - id: tag
        type: leb128(9)
        doc: body_length << 4 | kind
      - id: body
        size: body_length
        type:
          switch-on: kind
          cases:
            'sub_chunk_kind::index_map': index_map
        doc: |
          kinds 0 and 1: the text coded with the stream's `text_codec` (bytes here);
          kind 2: the index map; other kinds: bytes
    instances:
      kind_code:
        value: tag.value & 0xf
        doc: the low 4 bits of the tag
      kind:
        value: kind_code
        enum: sub_chunk_kind
      body_length:
        value: tag.value >> 4
      is_ancillary:
        value: (kind_code & 8) != 0
        doc: bit 3 of the kind

  index_map:
    doc: |
      The keyframe's VQ index map: map_h * map_w symbols in raster order, each in
      0..vocab_size-1, coded by `coder` with the header's `vocab_size` and `prior`.
    doc-ref: spec/m3v.md §6.5
    seq:
      - id: coder
        type: u1
        enum: index_map_coder
        doc-ref: spec/entropy-coding.md
      - id: map_h
        type: leb128(9)
        doc: rows, equal to the header's `grid_h`
      - id: map_w
        type: leb128(9)
        doc: columns, equal to the header's `grid_w`
      - id: coded
        size-eos: true
        doc: the coder's payload

  prmt:
    doc: |
      The description prompts (since 1.2; at most once, after HEAD and before the first CLIP):
      exactly one MessagePack map with string keys. Keys of 1.2: `keyframe` and `clip` (arrays
      of strings, the turns of the two dialogues), `name`, `version`, `turns`, `model`,
      `system`, `settings` (a map); readers ignore other keys. Informative: no decoder needs it.
    doc-ref: spec/m3v.md §4.3
    seq:
      - id: prompts
        type: msgpack
        valid:
          expr: _.is_map
        doc: the map
      - id: rest
        size-eos: true
        valid:
          expr: _.length == 0
        doc: nothing follows the map

  msgpack:
    doc: |
      One MessagePack value (big-endian): the first byte gives the format; integers, floats,
      lengths and counts follow it, then strings' and byte strings' bytes, an array's
      elements, a map's key-value pairs.
    doc-ref: https://github.com/msgpack/msgpack/blob/master/spec.md
    seq:
      - id: b1
        type: u1
        valid:
          expr: _ != 0xc1
        doc: the format byte (0xc1 is never used)
      - id: int_extra
        type:
          switch-on: b1
          cases:
            0xcc: u1
            0xcd: u2be
            0xce: u4be
            0xcf: u8be
            0xd0: s1
            0xd1: s2be
            0xd2: s4be
            0xd3: s8be
        doc: the value of uint 8..64 and int 8..64
      - id: float_32_value
        type: f4be
        if: b1 == 0xca
      - id: float_64_value
        type: f8be
        if: b1 == 0xcb
      - id: len_extra
        type:
          switch-on: b1
          cases:
            0xc4: u1
            0xc5: u2be
            0xc6: u4be
            0xc7: u1
            0xc8: u2be
            0xc9: u4be
            0xd9: u1
            0xda: u2be
            0xdb: u4be
            0xdc: u2be
            0xdd: u4be
            0xde: u2be
            0xdf: u4be
        doc: the byte length of bin, ext and str 8..32, the count of array and map 16..32
      - id: ext_type
        type: s1
        if: is_ext
      - id: str_value
        type: str
        size: num_bytes
        encoding: UTF-8
        if: is_str
      - id: bytes_value
        size: num_bytes
        if: is_bin or is_ext
        doc: a byte string's bytes, or an extension value's data
      - id: array_elements
        type: msgpack
        repeat: expr
        repeat-expr: num_items
        if: is_array
      - id: map_entries
        type: msgpack_map_entry
        repeat: expr
        repeat-expr: num_items
        if: is_map
    instances:
      is_nil:
        value: b1 == 0xc0
      is_bool:
        value: b1 == 0xc2 or b1 == 0xc3
      bool_value:
        value: b1 == 0xc3
      is_pos_fixint:
        value: b1 <= 0x7f
      is_neg_fixint:
        value: b1 >= 0xe0
      is_int:
        value: is_pos_fixint or is_neg_fixint or (b1 >= 0xcc and b1 <= 0xd3)
      int_value:
        value: 'is_pos_fixint ? b1 : (is_neg_fixint ? b1 - 0x100 : int_extra)'
        if: is_int
      is_float:
        value: b1 == 0xca or b1 == 0xcb
      float_value:
        value: 'b1 == 0xca ? float_32_value : float_64_value'
        if: is_float
      is_fixstr:
        value: (b1 & 0xe0) == 0xa0
      is_str:
        value: is_fixstr or (b1 >= 0xd9 and b1 <= 0xdb)
      is_bin:
        value: b1 >= 0xc4 and b1 <= 0xc6
      is_fixext:
        value: b1 >= 0xd4 and b1 <= 0xd8
      is_ext:
        value: (b1 >= 0xc7 and b1 <= 0xc9) or is_fixext
      is_array:
        value: (b1 & 0xf0) == 0x90 or b1 == 0xdc or b1 == 0xdd
      is_map:
        value: (b1 & 0xf0) == 0x80 or b1 == 0xde or b1 == 0xdf
      num_bytes:
        value: 'is_fixstr ? (b1 & 0x1f) : (is_fixext ? (1 << (b1 - 0xd4)) : len_extra)'
        if: is_str or is_bin or is_ext
        doc: bytes of a string, a byte string or an extension value's data
      num_items:
        value: '(b1 & 0xe0) == 0x80 ? (b1 & 0x0f) : len_extra'
        if: is_array or is_map
        doc: elements of an array, key-value pairs of a map

  msgpack_map_entry:
    seq:
      - id: key
        type: msgpack
      - id: value
        type: msgpack

  indx:
    doc: |
      The clip index, just before TAIL. Entry k gives clip k's CLIP chunk offset and
      first frame as deltas from entry k-1 (from 0 for entry 0).
    doc-ref: spec/m3v.md §7
    seq:
      - id: clip_count
        type: leb128(9)
        doc: number of clips, at most 2^32-1
      - id: frame_end
        type: leb128(9)
        doc: first_frame + frame_count of the last clip; 0 if no clips
      - id: entries
        type: indx_entry
        repeat: expr
        repeat-expr: clip_count.value

  indx_entry:
    doc-ref: spec/m3v.md §7
    seq:
      - id: offset_delta
        type: leb128(9)
        doc: offset(k) - offset(k-1) (offset(0) for entry 0); positive for k >= 1
      - id: frame_delta
        type: leb128(9)
        doc: first_frame(k) - first_frame(k-1) (0 for entry 0); positive for k >= 1

  tail:
    doc: |
      The trailer: always the last 18 bytes of a complete stream (type 04, length 0C,
      12 payload bytes, CRC), so a reader with random access finds the index from the end.
    doc-ref: spec/m3v.md §8
    seq:
      - id: index_offset
        type: u8
        doc: offset of the INDX chunk from the first byte of the signature
      - id: index_size
        type: u4
        doc: size of the whole INDX chunk; index_offset + index_size is TAIL's offset

enums:
  chunk_type:
    0x01:
      id: head
      doc: stream header, first chunk, exactly once (§5)
    0x02:
      id: clip
      doc: one clip (§6)
    0x03:
      id: indx
      doc: clip index, once, just before TAIL (§7)
    0x04:
      id: tail
      doc: trailer, last chunk (§8)
    0x80:
      id: prmt
      doc: description prompts, ancillary, since 1.2 (§4.3); 0x81-0xFF free
  sub_chunk_kind:
    0:
      id: keyframe_text
      doc: D^F, coded with the stream's text codec
    1:
      id: clip_text
      doc: D^C, coded with the stream's text codec
    2:
      id: index_map
      doc: the keyframe's index map K* (§6.5)
    15:
      id: pad
      doc: |
        PAD, ancillary, since 1.3 (§6.3): zero bytes that make a CLIP chunk big enough for the
        work limit (§11, at most 16 index-map cells a byte of chunk, not checked here); 8-14 free
  mode:
    0: interpolation
    1: prediction
  text_codec:
    0:
      id: utf8
      doc: utf-8 (spec/text-codecs.md §4)
    1:
      id: lzw
      doc: lzw (spec/text-codecs.md §5)
    2:
      id: tokans1
      doc: tokans-1 (spec/text-codecs.md §6)
  index_map_coder:
    0:
      id: raw
      doc: fixed-width binary, no entropy coding
    1:
      id: static
      doc: i.i.d. rANS, one table from the prior
    2:
      id: context
      doc: two-stage context-adaptive rANS on causal neighbours
    3:
      id: temporal
      doc: CONTEXT after a COPY/NEW decision against the previous clip's map (since 1.1)
