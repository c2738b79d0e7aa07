#!/usr/bin/env python3
"""Independent conformance client and verifier for the Candor protocol, version 1.

Written from the protocol text (docs/protocol-v1.md), the JSON Schemas in schemas/ and
openapi.yaml only, never from the server's code. It implements the formats itself (signed
notes, keys, RFC 6962 hashing and proofs, C2SP tiles, the section-4 leaf bytes), self-tests
them against Go's reference vectors, then drives a fresh, empty server through the whole
protocol and audits what it served.

Usage: conformance.py --url http://127.0.0.1:PORT --keys KEYS_DIR [--vectors DIR]

KEYS_DIR is the server's keys directory: the client reads log.vkey (to verify checkpoints),
operator.key (to sign `register` and `revoke`, as the operator does) and operator.vkey. It runs
against a fresh, empty server (only the genesis entry).

Prints one line per check, `ok ...` or `FAIL ... expected ... found ...`, then a tally.
Exit 0 if every check passed, 1 if any failed, 2 on a usage or network error.

Needs Python 3.11 and the `cryptography` package (Ed25519 only).
"""

import argparse
import base64
import csv
import datetime
import hashlib
import http.client
import io
import json
import os
import random
import re
import select
import socket
import sys
import time
import urllib.parse
import uuid

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:  # pragma: no cover
    print("conformance.py needs the `cryptography` package: python3 -m pip install cryptography",
          file=sys.stderr)
    sys.exit(2)


class NetworkError(Exception):
    pass


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Check bookkeeping
# ---------------------------------------------------------------------------------------------

class Checker:
    """Counts checks and prints one line per check."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.readings = {}          # ambiguity -> set of readings the server was seen to take

    def reading(self, question, answer):
        self.readings.setdefault(question, set()).add(answer)

    def check(self, cond, name, expected=None, found=None):
        if cond:
            self.passed += 1
            print(f"ok {name}")
        else:
            self.failed += 1
            line = f"FAIL {name}"
            if expected is not None or found is not None:
                line += f": expected {short(expected)} found {short(found)}"
            self.failures.append(line)
            print(line)
        sys.stdout.flush()
        return bool(cond)

    def equal(self, found, expected, name):
        return self.check(found == expected, name, expected, found)


def short(value, limit=400):
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} chars)"
    return text


# ---------------------------------------------------------------------------------------------
# Base64 (standard alphabet, padded, canonical) and hashing
# ---------------------------------------------------------------------------------------------

def b64(data):
    return base64.b64encode(data).decode("ascii")


def b64decode_canonical(text):
    """Decodes standard padded base64 and refuses any non-canonical form (RFC 4648 3.5)."""
    if not isinstance(text, str) or len(text) % 4 != 0:
        raise ValueError("base64 length")
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise ValueError("base64 alphabet")
    data = base64.b64decode(text, validate=True)
    if b64(data) != text:
        raise ValueError("non-canonical base64")
    return data


def sha256(data):
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------------------------------------
# Edwards25519 point checks (canonical encoding, small order), for strict verification
# ---------------------------------------------------------------------------------------------

ED_P = 2 ** 255 - 19
ED_L = 2 ** 252 + 27742317777372353535851937790883648493
ED_D = (-121665 * pow(121666, ED_P - 2, ED_P)) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def ed_decode_point(enc):
    """Affine (x, y) of a canonical point encoding, or None if not canonical or not a point."""
    if len(enc) != 32:
        return None
    y = int.from_bytes(enc, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= ED_P:
        return None
    u = (y * y - 1) % ED_P
    v = (ED_D * y * y + 1) % ED_P
    x2 = u * pow(v, ED_P - 2, ED_P) % ED_P
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P != 0:
        return None
    if x == 0 and sign == 1:
        return None
    if (x & 1) != sign:
        x = ED_P - x
    return (x, y)


def ed_add(p1, p2):
    x1, y1 = p1
    x2, y2 = p2
    t = ED_D * x1 * x2 * y1 * y2 % ED_P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, ED_P - 2, ED_P) % ED_P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, ED_P - 2, ED_P) % ED_P
    return (x3, y3)


def ed_is_small_order(point):
    q = point
    for _ in range(3):
        q = ed_add(q, q)
    return q == (0, 1)


def ed_point_ok(enc):
    """A canonical encoding of a point that is not of small order ("weak")."""
    point = ed_decode_point(enc)
    return point is not None and not ed_is_small_order(point)


def ed25519_verify_strict(public_key, message, signature):
    """Ed25519 verification in the spirit of ed25519-dalek `verify_strict`: canonical S,
    canonical and non-weak A and R, then the (cofactorless) check of OpenSSL."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    if int.from_bytes(signature[32:], "little") >= ED_L:
        return False
    if not ed_point_ok(public_key) or not ed_point_ok(signature[:32]):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except InvalidSignature:
        return False


# ---------------------------------------------------------------------------------------------
# Signed-note keys (golang.org/x/mod/sumdb/note text formats) and notes (C2SP signed-note)
# ---------------------------------------------------------------------------------------------

def key_id(name, public_key):
    return sha256(name.encode("utf-8") + b"\n\x01" + public_key)[:4]


def valid_key_name(name):
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


class VerifierKey:
    def __init__(self, name, public_key):
        self.name = name
        self.public = public_key
        self.id = key_id(name, public_key)

    @property
    def text(self):
        encoded = b64(b"\x01" + self.public)
        return f"{self.name}+{self.id.hex()}+{encoded}"

    def __repr__(self):
        return f"VerifierKey({self.text})"


def weak_vkey_text(name):
    """A verifier key whose point is the identity (order 1): well formed, but weak."""
    public = b"\x01" + bytes(31)
    encoded = b64(b"\x01" + public)
    return f"{name}+{key_id(name, public).hex()}+{encoded}"


def parse_vkey(text):
    """Parses `<name>+<hex8>+<base64(0x01 ‖ key)>` with every check of section 1."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError("not name+id+key")
    name, hex_id, key64 = parts
    if not valid_key_name(name):
        raise ValueError("bad key name")
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise ValueError("key id is not 8 lowercase hex digits")
    raw = b64decode_canonical(key64)
    if len(raw) != 33 or raw[0] != 0x01:
        raise ValueError("not an Ed25519 key (0x01 ‖ 32 bytes)")
    public = raw[1:]
    if key_id(name, public).hex() != hex_id:
        raise ValueError("key id does not match")
    if not ed_point_ok(public):
        raise ValueError("non-canonical or weak point")
    return VerifierKey(name, public)


class SecretKey:
    def __init__(self, name, seed):
        self.name = name
        self.seed = seed
        self.private = Ed25519PrivateKey.from_private_bytes(seed)
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.vkey = VerifierKey(name, public)

    @staticmethod
    def generate(name):
        return SecretKey(name, os.urandom(32))

    @property
    def text(self):
        encoded = b64(b"\x01" + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.vkey.id.hex()}+{encoded}"

    def sign(self, message):
        return self.private.sign(message)


def parse_skey(text):
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise ValueError("not PRIVATE+KEY+name+id+key")
    _, _, name, hex_id, key64 = parts
    raw = b64decode_canonical(key64)
    if len(raw) != 33 or raw[0] != 0x01:
        raise ValueError("not an Ed25519 secret key")
    key = SecretKey(name, raw[1:])
    if key.vkey.id.hex() != hex_id:
        raise ValueError("secret key id does not match")
    return key


def signature_line(key, text):
    return f"— {key.name} {b64(key.vkey.id + key.sign(text))}\n".encode("utf-8")


def sign_note(text, keys):
    """A signed note: the text (ending in a newline), a blank line, one line per key."""
    assert text.endswith(b"\n")
    return text + b"\n" + b"".join(signature_line(k, text) for k in keys)


class ParsedNote:
    def __init__(self, text, signatures):
        self.text = text                # bytes, including its final newline
        self.signatures = signatures    # [(name, key id bytes, signature bytes)]


def parse_note(note):
    """Splits a signed note; raises ValueError on any syntax error (C2SP signed-note)."""
    try:
        s = note.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in s):
        raise ValueError("control character")
    cut = s.rfind("\n\n")
    if cut < 0:
        raise ValueError("no blank line before the signatures")
    text, block = s[:cut + 1], s[cut + 2:]
    if not block.endswith("\n"):
        raise ValueError("signature block does not end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        m = re.fullmatch(r"— (\S+) (\S+)", line)
        if not m or not valid_key_name(m.group(1)):
            raise ValueError(f"bad signature line {line!r}")
        raw = b64decode_canonical(m.group(2))
        if len(raw) < 5:
            raise ValueError("signature too short")
        signatures.append((m.group(1), raw[:4], raw[4:]))
    if not signatures:
        raise ValueError("no signature")
    return ParsedNote(text.encode("utf-8"), signatures)


def verify_note_exact(note, keys):
    """True iff the note carries exactly one valid signature line per key, in that order."""
    try:
        parsed = parse_note(note)
    except ValueError:
        return False
    if len(parsed.signatures) != len(keys):
        return False
    for (name, kid, sig), key in zip(parsed.signatures, keys):
        if name != key.name or kid != key.id:
            return False
        if not ed25519_verify_strict(key.public, parsed.text, sig):
            return False
    return True


def note_text(note):
    """The text of a note (the JSON line and its newline)."""
    return parse_note(note).text


def statement_hash(note):
    return sha256(note_text(note)).hex()


# ---------------------------------------------------------------------------------------------
# Checkpoints (C2SP tlog-checkpoint)
# ---------------------------------------------------------------------------------------------

class Checkpoint:
    def __init__(self, origin, size, root, note):
        self.origin = origin
        self.size = size
        self.root = root
        self.note = note


def parse_checkpoint(note_bytes, log_key):
    """Verifies a checkpoint note with the log key and parses it; raises ValueError."""
    if isinstance(note_bytes, str):
        note_bytes = note_bytes.encode("utf-8")
    parsed = parse_note(note_bytes)
    if not verify_note_exact(note_bytes, [log_key]):
        raise ValueError("checkpoint not signed (exactly once) by the log key")
    m = re.fullmatch(r"([^\n]+)\n(0|[1-9][0-9]*)\n([A-Za-z0-9+/=]+)\n", parsed.text.decode())
    if not m:
        raise ValueError("checkpoint body is not origin/size/root with no extension lines")
    root = b64decode_canonical(m.group(3))
    if len(root) != 32:
        raise ValueError("root is not 32 bytes")
    return Checkpoint(m.group(1), int(m.group(2)), root, note_bytes)


# ---------------------------------------------------------------------------------------------
# RFC 6962 / RFC 9162 Merkle trees
# ---------------------------------------------------------------------------------------------

def leaf_hash(leaf):
    return sha256(b"\x00" + leaf)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split_point(n):
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(hashes):
    """MTH over a non-empty list of leaf hashes."""
    n = len(hashes)
    if n == 0:
        raise ValueError("empty tree")
    if n == 1:
        return hashes[0]
    k = split_point(n)
    return node_hash(tree_root(hashes[:k]), tree_root(hashes[k:]))


def inclusion_proof(index, hashes):
    """RFC 6962 PATH(m, D[n])."""
    n = len(hashes)
    if n <= 1:
        return []
    k = split_point(n)
    if index < k:
        return inclusion_proof(index, hashes[:k]) + [tree_root(hashes[k:])]
    return inclusion_proof(index - k, hashes[k:]) + [tree_root(hashes[:k])]


def consistency_proof(m, hashes):
    """RFC 6962 PROOF(m, D[n])."""
    return _subproof(m, hashes, True)


def _subproof(m, hashes, complete):
    n = len(hashes)
    if m == n:
        return [] if complete else [tree_root(hashes)]
    k = split_point(n)
    if m <= k:
        return _subproof(m, hashes[:k], complete) + [tree_root(hashes[k:])]
    return _subproof(m - k, hashes[k:], False) + [tree_root(hashes[:k])]


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2 (with first = second giving an empty proof)."""
    if first < 1 or first > second:
        return False
    if first == second:
        return proof == [] and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# ---------------------------------------------------------------------------------------------
# C2SP tlog-tiles: paths, hash tiles, entry bundles
# ---------------------------------------------------------------------------------------------

TILE_WIDTH = 256


def tile_index_path(n):
    groups = []
    while True:
        groups.append(n % 1000)
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    last = len(groups) - 1
    return "/".join(("x" if i < last else "") + f"{g:03d}" for i, g in enumerate(groups))


def tile_path(level, index, width):
    """level -1 is an entry bundle."""
    prefix = "tile/entries/" if level == -1 else f"tile/{level}/"
    path = prefix + tile_index_path(index)
    if width < TILE_WIDTH:
        path += f".p/{width}"
    return path


def tiles_for_size(size):
    """[(level, index, width)] of every hash tile of a tree of `size` leaves."""
    tiles = []
    level = 0
    while size // (TILE_WIDTH ** level) > 0:
        count = size // (TILE_WIDTH ** level)
        for n in range(count // TILE_WIDTH):
            tiles.append((level, n, TILE_WIDTH))
        if count % TILE_WIDTH:
            tiles.append((level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles


def bundles_for_size(size):
    out = [(-1, n, TILE_WIDTH) for n in range(size // TILE_WIDTH)]
    if size % TILE_WIDTH:
        out.append((-1, size // TILE_WIDTH, size % TILE_WIDTH))
    return out


def level_hashes(leaf_hashes, level):
    """Hashes of the complete subtrees of 256**level leaves, left to right."""
    hashes = list(leaf_hashes)
    for _ in range(level):
        hashes = [tree_root(hashes[i:i + TILE_WIDTH])
                  for i in range(0, len(hashes) - TILE_WIDTH + 1, TILE_WIDTH)]
    return hashes


def tile_bytes(leaf_hashes, level, index, width):
    hashes = level_hashes(leaf_hashes, level)
    start = index * TILE_WIDTH
    return b"".join(hashes[start:start + width])


def bundle_bytes(entries):
    out = b""
    for e in entries:
        out += len(e).to_bytes(2, "big") + e
    return out


def split_bundle(data):
    """Splits an entry bundle into entries; raises ValueError if it does not parse exactly."""
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("truncated length prefix")
        n = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise ValueError("truncated entry")
        entries.append(data[pos:pos + n])
        pos += n
    return entries


# ---------------------------------------------------------------------------------------------
# Section 4: the exact leaf bytes
# ---------------------------------------------------------------------------------------------

INSTANT_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"


def escape_statement(note):
    """Only `"`, `\\` and newline are escaped; every other byte stays raw UTF-8."""
    return note.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")


def unescape_statement(escaped):
    out, i = bytearray(), 0
    while i < len(escaped):
        c = escaped[i:i + 1]
        if c == b"\\":
            nxt = escaped[i + 1:i + 2]
            if nxt == b"\\":
                out += b"\\"
            elif nxt == b'"':
                out += b'"'
            elif nxt == b"n":
                out += b"\n"
            else:
                raise ValueError(f"escape \\{nxt!r} not allowed")
            i += 2
        elif c == b'"':
            raise ValueError("raw quote in statement")
        elif c in (b"\n", b"\r") or c[0] < 0x20:
            raise ValueError("raw control character in statement")
        else:
            out += c
            i += 1
    return bytes(out)


def entry_bytes(index, logged_at, note):
    return (b'{"index":%d,"logged_at":"%s","statement":"%s"}'
            % (index, logged_at.encode("ascii"), escape_statement(note)))


def parse_entry(data):
    """(index, logged_at, note) of a leaf in exactly the section-4 form, else ValueError."""
    m = re.fullmatch(rb'\{"index":(0|[1-9][0-9]*),"logged_at":"(' + INSTANT_RE.encode()
                     + rb')","statement":"(.*)"\}', data, re.S)
    if not m:
        raise ValueError("not the section-4 form")
    index, logged_at = int(m.group(1)), m.group(2).decode()
    note = unescape_statement(m.group(3))
    if entry_bytes(index, logged_at, note) != data:
        raise ValueError("does not re-encode to the same bytes")
    return index, logged_at, note


# ---------------------------------------------------------------------------------------------
# JSON helpers: canonical writing, strict reading, RFC 7396 merge patch
# ---------------------------------------------------------------------------------------------

def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate object key")
    return dict(pairs)


def strict_json(text):
    return json.loads(text, object_pairs_hook=_no_duplicates)


def merge_patch(target, patch):
    """RFC 7396."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------------------------------------
# Self-tests against Go's reference vectors
# ---------------------------------------------------------------------------------------------

def self_test(ck, vectors_dir):
    def load(name):
        with open(os.path.join(vectors_dir, name), encoding="utf-8") as f:
            return json.load(f)

    notes = load("notes.json")
    secret = {}
    for k in notes["keys"]:
        try:
            sk = parse_skey(k["Skey"])
            vk = parse_vkey(k["Vkey"])
            ok = sk.vkey.text == k["Vkey"] and sk.text == k["Skey"] and vk.public == sk.vkey.public
        except ValueError as e:
            ok, sk = False, None
            print(f"   ({e})")
        ck.check(ok, f"self-test: key text and key id of {k['Name']} ({k['Vkey'].split('+')[1]})")
        if sk:
            secret[(sk.name, sk.vkey.id)] = sk
    for i, n in enumerate(notes["notes"]):
        note = n["note"].encode("utf-8")
        parsed = parse_note(note)
        keys = [secret[(name, kid)] for name, kid, _ in parsed.signatures]
        ck.check(verify_note_exact(note, [k.vkey for k in keys]), f"self-test: note {i} verifies")
        ck.equal(sign_note(n["text"].encode("utf-8"), keys), note,
                 f"self-test: note {i} re-signed to the same bytes")
        ck.check(parsed.text == n["text"].encode(), f"self-test: note {i} text split")
        tampered = note.replace(b"example", b"exbmple", 1)
        ck.check(not verify_note_exact(tampered, [k.vkey for k in keys]),
                 f"self-test: tampered note {i} does not verify")
    # Key checks of section 1.
    good = secret[next(iter(secret))].vkey.text
    name, hid, k64 = good.split("+", 2)
    weak = weak_vkey_text(name)
    for label, bad in [("uppercase key id", f"{name}+{hid.upper()}+{k64}"),
                       ("wrong key id", f"{name}+00000000+{k64}"),
                       ("weak (small-order) point", weak)]:
        try:
            parse_vkey(bad)
            refused = False
        except ValueError:
            refused = True
        ck.check(refused, f"self-test: verifier key with {label} is refused")

    tree = load("tree.json")
    leaves = [f"leaf {i}".encode() for i in range(1000)]
    hashes = [leaf_hash(x) for x in leaves]
    ok = all(b64(hashes[int(k.split()[1])]) == v for k, v in tree["leaf_hashes"].items())
    ck.check(ok, "self-test: RFC 6962 leaf hashes")
    ok = all(b64(tree_root(hashes[:r["size"]])) == r["root"] for r in tree["roots"])
    ck.check(ok, f"self-test: roots at {len(tree['roots'])} sizes")
    roots = {r["size"]: b64decode_canonical(r["root"]) for r in tree["roots"]}
    good_gen = good_ver = bad_ok = True
    for p in tree["inclusion"]:
        proof = [b64decode_canonical(h) for h in p["proof"]]
        good_gen &= inclusion_proof(p["index"], hashes[:p["size"]]) == proof
        root = roots.get(p["size"]) or tree_root(hashes[:p["size"]])
        good_ver &= verify_inclusion(p["index"], p["size"], hashes[p["index"]], proof, root)
        bad_ok &= not verify_inclusion(p["index"], p["size"], hashes[(p["index"] + 1) % 1000],
                                       proof, root)
    ck.check(good_gen, "self-test: inclusion proofs generated as Go's")
    ck.check(good_ver, "self-test: inclusion proofs verify")
    ck.check(bad_ok, "self-test: inclusion proofs of another leaf do not verify")
    good_gen = good_ver = bad_ok = True
    for p in tree["consistency"]:
        proof = [b64decode_canonical(h) for h in p["proof"]]
        good_gen &= consistency_proof(p["from"], hashes[:p["to"]]) == proof
        r1, r2 = tree_root(hashes[:p["from"]]), tree_root(hashes[:p["to"]])
        good_ver &= verify_consistency(p["from"], p["to"], r1, r2, proof)
        if p["from"] != p["to"]:
            bad_ok &= not verify_consistency(p["from"], p["to"], r1, sha256(r2), proof)
    ck.check(good_gen, "self-test: consistency proofs generated as Go's")
    ck.check(good_ver, "self-test: consistency proofs verify")
    ck.check(bad_ok, "self-test: consistency proofs to another root do not verify")

    tiles = load("tiles.json")
    expected = {tile_path(l, n, w): tile_bytes(hashes, l, n, w) for l, n, w in tiles_for_size(1000)}
    ok = sorted(expected) == sorted(t["path"] for t in tiles["tiles"])
    for t in tiles["tiles"]:
        data = expected.get(t["path"], b"")
        ok &= sha256(data).hex() == t["sha256_of_bytes"] and len(data) == t["length"]
    ck.check(ok, "self-test: hash tiles of the 1000-leaf tree (paths, bytes)")
    ok = sorted(tile_path(*b) for b in bundles_for_size(1000)) == sorted(
        t["path"] for t in tiles["entry_bundles"])
    for l, n, w in bundles_for_size(1000):
        data = bundle_bytes(leaves[n * 256:n * 256 + w])
        t = next(x for x in tiles["entry_bundles"] if x["path"] == tile_path(l, n, w))
        ok &= sha256(data).hex() == t["sha256_of_bytes"] and len(data) == t["length"]
        ok &= split_bundle(data) == leaves[n * 256:n * 256 + w]
    ck.check(ok, "self-test: entry bundles of the 1000-leaf tree (paths, bytes, splitting)")
    paths = load("tile-paths.json")
    ok = all(tile_path(p["level"], p["index"], p["width"]) == p["path"] for p in paths["paths"])
    ck.check(ok, "self-test: tile paths")

    # Section 4 escaping: only ", \ and newline are escaped.
    note = 'x"y\\z\n\nü—/'.encode()
    e = entry_bytes(7, "2026-01-02T03:04:05.678Z", note)
    ok = e == ('{"index":7,"logged_at":"2026-01-02T03:04:05.678Z","statement":'
               '"x\\"y\\\\z\\n\\nü—/"}').encode()
    ok &= parse_entry(e)[2] == note and json.loads(e)["statement"] == note.decode()
    ck.check(ok, "self-test: section-4 leaf bytes and escaping")
    refused = 0
    variants = [e.replace(b"\xc3\xbc", b"\\u00fc"), e.replace(b"/", b"\\/"),
                e.replace(b'{"index":7,', b'{"index": 7,'), e.replace(b'"index":7', b'"index":07'),
                e.replace(b'{"index":7,"logged_at":"2026-01-02T03:04:05.678Z",',
                          b'{"logged_at":"2026-01-02T03:04:05.678Z","index":7,'),
                e.replace(b"\\n", b"\n"), e.replace(b".678Z", b"Z"), e + b"\n"]
    for v in variants:
        try:
            parse_entry(v)
        except ValueError:
            refused += 1
    ck.equal(refused, len(variants), "self-test: leaves not exactly in the section-4 form are "
             "refused (\\u escapes, \\/, spaces, leading zero, key order, raw newline, instant "
             "form, trailing newline)")
    ck.equal(merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}, {"a": None, "b": {"c": 5},
                                                                     "e": [2], "f": 1}),
             {"b": {"c": 5, "d": 3}, "e": [2], "f": 1}, "self-test: RFC 7396 merge patch")

# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # lowercase name -> value (repeated headers joined by ", ")
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Http:
    def __init__(self, base_url):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise UsageError("--url must be http://HOST:PORT")
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.conn

    def request(self, method, path, body=None, headers=None, retry=None):
        """One request on a kept-alive connection. GETs are retried once on a fresh
        connection (the server may have closed an idle one); POSTs are not, since a resend
        would be answered as a duplicate."""
        if retry is None:
            retry = method == "GET"
        hdrs = dict(headers or {})
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                merged = {}
                for k, v in r.getheaders():
                    k = k.lower()
                    merged[k] = merged[k] + ", " + v if k in merged else v
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                return Response(r.status, merged, data)
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == 1 or not retry:
                    raise NetworkError(f"{method} {path}: {e!r}")

    def get(self, path):
        return self.request("GET", path)

    def post_expect_continue(self, path, body, content_type):
        """A POST sent the way curl sends large bodies: `Expect: 100-continue`, then the body
        only if the server asks for it, watching for an early final answer (a server may
        refuse a too-large body from its headers and close the connection)."""
        sock = socket.create_connection((self.host, self.port), timeout=30)
        try:
            sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                          f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                          "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode())
            received = b""
            readable, _, _ = select.select([sock], [], [], 2.0)
            if readable:
                received = sock.recv(65536)
            if not received or received.startswith(b"HTTP/1.1 100"):
                received = received.split(b"\r\n\r\n", 1)[1] if received else b""
                sent = 0
                try:
                    while sent < len(body):
                        readable, writable, _ = select.select([sock], [sock], [], 30)
                        if readable:
                            break       # an early answer
                        if writable:
                            sent += sock.send(body[sent:sent + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    pass
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
        except OSError as e:
            raise NetworkError(f"POST {path}: {e!r}")
        finally:
            sock.close()

        class _Raw:
            def makefile(self, *_):
                return io.BytesIO(received)
        try:
            r = http.client.HTTPResponse(_Raw())
            r.begin()
            data = r.read()
        except (http.client.HTTPException, ValueError) as e:
            raise NetworkError(f"POST {path}: unreadable answer {received[:200]!r}: {e!r}")
        headers = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, headers, data)

    def post(self, path, body, content_type):
        return self.request("POST", path, body=body, headers={"Content-Type": content_type})

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def media_type(value):
    return (value or "").split(";")[0].strip().lower()


# ---------------------------------------------------------------------------------------------
# Statements: parties (publishers and the operator) and the notes they sign
# ---------------------------------------------------------------------------------------------

COMMON_FIELDS = ["v", "log", "publisher", "seq", "prev", "id", "type"]


class Note:
    """A statement note the client made, with what it needs to remember about it."""

    def __init__(self, party, body, data, seq, text):
        self.party = party
        self.body = body
        self.bytes = data
        self.seq = seq
        self.hash = sha256(text).hex() if text is not None else None
        self.index = None           # set once logged
        self.logged_at = None

    @property
    def id(self):
        return self.body.get("id") if isinstance(self.body, dict) else None


class Party:
    """A publisher (or the operator): its id, keys and its own view of its chain head."""

    def __init__(self, ctx, pid, signing, recovery=None):
        self.ctx = ctx
        self.id = pid
        self.signing = signing          # SecretKey in force
        self.recovery = recovery        # SecretKey or None
        self.seq = 0                    # seq of the last logged statement
        self.head = None                # its statement hash
        self.notes = []                 # logged notes, in order

    def body(self, type_, fields, seq=None, prev="head", sid=None, log=None):
        body = {"v": 1, "log": self.ctx.origin if log is None else log, "publisher": self.id,
                "seq": self.seq + 1 if seq is None else seq,
                "prev": self.head if prev == "head" else prev,
                "id": sid or str(uuid.uuid4()), "type": type_}
        body.update(fields)
        return body

    def note(self, type_, fields, signers=None, transform=None, **kw):
        """Signs a statement. `transform` rewrites the JSON line (str -> str or bytes) for
        hostile statements; `signers` defaults to the party's signing key."""
        body = self.body(type_, fields, **kw)
        line = jdump(body)
        if transform is not None:
            line = transform(line)
        if isinstance(line, str):
            line = line.encode("utf-8")
        text = line + b"\n"
        keys = signers if signers is not None else [self.signing]
        return Note(self, body, sign_note(text, keys), body["seq"], text)

    def logged(self, note):
        self.seq = note.seq
        self.head = note.hash
        self.notes.append(note)

    @property
    def quoted_id(self):
        return urllib.parse.quote(self.id, safe="")


def user_data_record(country="DE", received_on="2026-03-10", **extra):
    r = {"kind": "user_data", "channel": "legal_process", "process": "search_warrant",
         "country": country, "authority": {"type": "police"}, "received_on": received_on,
         "targets": {"accounts": 1}, "data_categories": ["subscriber"],
         "disposition": "pending", "user_notified": "delayed"}
    r.update(extra)
    return {k: v for k, v in r.items() if v is not None}


def content_record(country="FR", received_on="2026-02-01", **extra):
    r = {"kind": "content_restriction", "channel": "legal_process", "process": "removal_order",
         "country": country, "authority": {"type": "regulator", "name": "Regulator"},
         "received_on": received_on, "targets": {"items": 3, "urls": 2},
         "reasons": ["defamation", "privacy"], "scope": "regional", "territories": ["FR", "BE"],
         "actioned": {"items": 2}, "disposition": "partially_complied", "user_notified": "yes"}
    r.update(extra)
    return {k: v for k, v in r.items() if v is not None}


def account_record(country="TR", received_on="2025-11-20", **extra):
    r = {"kind": "account_restriction", "channel": "informal", "process": "administrative_order",
         "country": country, "authority": {"type": "executive"}, "received_on": received_on,
         "targets": {"accounts": 4}, "scope": "national", "actioned": {"accounts": 1},
         "disposition": "rejected", "user_notified": "no"}
    r.update(extra)
    return {k: v for k, v in r.items() if v is not None}


def preservation_record(country="US", received_on="2025-07-04", **extra):
    r = {"kind": "preservation", "channel": "emergency", "process": "preservation_order",
         "country": country, "authority": {"type": "prosecutor"}, "received_on": received_on,
         "targets": {"identifiers": 2}, "disposition": "complied", "user_notified": "prohibited"}
    r.update(extra)
    return {k: v for k, v in r.items() if v is not None}


def seal_commitment(origin, publisher, salt, request_string):
    return sha256(b"candor-seal-v1\n" + origin.encode() + b"\n" + publisher.encode() + b"\n"
                  + salt + request_string.encode("utf-8")).hex()

# ---------------------------------------------------------------------------------------------
# The client: submitting, receipts, refusals
# ---------------------------------------------------------------------------------------------

RECEIPT_FIELDS = {"index", "leaf_hash", "logged_at", "checkpoint", "inclusion_proof"}
PROBLEM_TYPE = "application/problem+json"


class Client:
    def __init__(self, ck, http_, log_key, operator_key):
        self.ck = ck
        self.http = http_
        self.log_key = log_key
        self.origin = log_key.name
        self.operator = Party(self, self.origin + "/operator", operator_key)
        self.parties = {}               # id -> Party (publishers)
        self.by_index = {}              # entry index -> Note, for every statement logged
        self.signed_roots = {}          # tree size -> root, from every verified checkpoint
        self.today = None               # date of the genesis entry's logged_at

    # --- small helpers -------------------------------------------------------------------

    def day(self, offset):
        return (self.today + datetime.timedelta(days=offset)).isoformat()

    def note_root(self, size, root, where):
        """Remembers a signed (size, root) and checks the log never signed two roots for one
        size (section 5)."""
        old = self.signed_roots.setdefault(size, root)
        if old != root:
            self.ck.check(False, f"two different signed roots for size {size} ({where})",
                          b64(old), b64(root))

    def checkpoint(self):
        """GET /checkpoint, verified; returns the Checkpoint or None."""
        r = self.http.get("/checkpoint")
        if r.status != 200:
            return None
        try:
            cp = parse_checkpoint(r.body, self.log_key)
        except ValueError:
            return None
        self.note_root(cp.size, cp.root, "GET /checkpoint")
        return cp

    def api_head(self, party):
        path = ("/api/v1/operator" if party is self.operator
                else f"/api/v1/publishers/{party.quoted_id}")
        r = self.http.get(path)
        if r.status != 200:
            return None
        return (r.json() or {}).get("head")

    # --- receipts ------------------------------------------------------------------------

    def receipt_problems(self, receipt, note, duplicate_of=None):
        """Everything wrong with a receipt, verified offline with only the log key."""
        if not isinstance(receipt, dict):
            return ["not a JSON object"]
        problems = []
        missing = RECEIPT_FIELDS - set(receipt)
        if missing:
            return [f"missing {sorted(missing)}"]
        extra = set(receipt) - RECEIPT_FIELDS
        if extra:
            problems.append(f"unexpected fields {sorted(extra)}")
        index, logged_at = receipt["index"], receipt["logged_at"]
        if not isinstance(index, int) or index < 0:
            return [f"bad index {index!r}"]
        if not isinstance(logged_at, str) or not re.fullmatch(INSTANT_RE, logged_at):
            return [f"bad logged_at {logged_at!r}"]
        try:
            cp = parse_checkpoint(receipt["checkpoint"], self.log_key)
        except (ValueError, AttributeError) as e:
            return [f"checkpoint does not verify: {e}"]
        self.note_root(cp.size, cp.root, "a receipt")
        if cp.origin != self.origin:
            problems.append(f"checkpoint origin {cp.origin!r}")
        if not index < cp.size:
            problems.append(f"checkpoint size {cp.size} does not cover index {index}")
        expected_leaf = leaf_hash(entry_bytes(index, logged_at, note.bytes))
        if receipt["leaf_hash"] != b64(expected_leaf):
            problems.append(f"leaf_hash {receipt['leaf_hash']} is not the hash of the "
                            f"section-4 entry ({b64(expected_leaf)})")
        try:
            proof = [b64decode_canonical(h) for h in receipt["inclusion_proof"]]
        except (ValueError, TypeError):
            return problems + ["inclusion_proof is not canonical base64"]
        if not verify_inclusion(index, cp.size, expected_leaf, proof, cp.root):
            problems.append("inclusion proof does not lead to the checkpoint's root")
        if duplicate_of is not None:
            if index != duplicate_of.index or logged_at != duplicate_of.logged_at:
                problems.append(f"duplicate answered with entry {index} at {logged_at}, not the "
                                f"original {duplicate_of.index} at {duplicate_of.logged_at}")
        elif index in self.by_index:
            problems.append(f"index {index} was already given to another statement")
        return problems

    def accept_receipt(self, receipt, note, label, status, duplicate_of=None, quiet=False):
        """Checks a 201/200 receipt and records the entry in the client's model. Returns the
        list of problems; with `quiet` the caller reports them."""
        problems = self.receipt_problems(receipt, note, duplicate_of)
        if not problems and not quiet:
            cp_now = self.checkpoint()
            cp = parse_checkpoint(receipt["checkpoint"], self.log_key)
            if cp_now is None or cp_now.size < cp.size:
                problems.append("GET /checkpoint afterwards is older than the receipt's "
                                "(acknowledged before its checkpoint was published)")
            if status == 200 and cp_now is not None and cp.size != cp_now.size:
                problems.append(f"the duplicate's receipt is not fresh: checkpoint size {cp.size}"
                                f", the latest is {cp_now.size}")
        if not quiet:
            self.ck.check(not problems, f"{label}: receipt verifies offline (checkpoint "
                          f"signature, leaf hash of the section-4 entry, inclusion proof)",
                          "no problem", "; ".join(problems))
        if status == 201 and isinstance(receipt, dict) and isinstance(receipt.get("index"), int):
            note.index = receipt["index"]
            note.logged_at = receipt.get("logged_at")
            self.by_index[note.index] = note
            note.party.logged(note)
        return problems

    # --- submitting ----------------------------------------------------------------------

    def post_note(self, data):
        return self.http.post("/api/v1/statements", data, "text/plain")

    def submit(self, note, label, expect=201, duplicate_of=None):
        """POSTs one note that should be accepted (201) or be a duplicate (200)."""
        r = self.post_note(note.bytes)
        self.ck.check(r.status == expect, f"{label}: answered {expect}", expect,
                      f"{r.status} {short(r.body, 300)}")
        if r.status in (200, 201):
            self.ck.check(media_type(r.header("content-type")) == "application/json",
                          f"{label}: receipt is application/json", "application/json",
                          r.header("content-type"))
            self.accept_receipt(r.json(), note, label, r.status, duplicate_of)
            return r.json()
        return None

    def submit_batch(self, items, label, expected, quiet=False):
        """POSTs a batch; `items` are Notes, `expected` the status of each item. With `quiet`,
        one check covers every receipt. Returns the list of results."""
        body = jdump({"statements": [n.bytes.decode("utf-8") for n in items]}).encode()
        r = self.http.post("/api/v1/statements/batch", body, "application/json")
        self.ck.check(r.status == 200, f"{label}: batch answered 200", 200,
                      f"{r.status} {short(r.body, 300)}")
        results = (r.json() or {}).get("results") if r.status == 200 else None
        if not isinstance(results, list):
            self.ck.check(False, f"{label}: batch answer has results", "results", short(r.body))
            return []
        self.ck.check(len(results) == len(items), f"{label}: one result per item, in order",
                      len(items), len(results))
        statuses = [x.get("status") for x in results]
        self.ck.check(statuses == expected, f"{label}: item statuses", short(expected, 200),
                      statuses)
        all_problems = []
        for i, (note, res) in enumerate(zip(items, results)):
            st = res.get("status")
            if st in (200, 201):
                dup = None
                if st == 200:
                    dup = next((n for n in self.by_index.values() if n.bytes == note.bytes), None)
                problems = self.accept_receipt(res.get("receipt"), note, f"{label}: item {i}", st,
                                               dup, quiet=quiet)
                all_problems += [f"item {i}: {p}" for p in problems]
            else:
                self.check_problem(res.get("problem"), st, f"{label}: item {i}",
                                            note.party, expected_pointer=None)
        if quiet:
            self.ck.check(not all_problems, f"{label}: all {len(results)} receipts verify offline "
                          "(checkpoint signature, leaf hash of the section-4 entry, inclusion "
                          "proof)", "no problem", all_problems[:5])
        return results

    # --- refusals ------------------------------------------------------------------------

    def check_problem(self, problem, status, label, party, expected_pointer=None):
        """Section 6.2: type, title, status, detail; pointer for a field; head on 409."""
        issues = []
        if not isinstance(problem, dict):
            self.ck.check(False, f"{label}: problem body", "a JSON object", short(problem))
            return
        for f in ("type", "title", "detail"):
            if not isinstance(problem.get(f), str) or not problem.get(f):
                issues.append(f"`{f}` missing or empty")
        if problem.get("status") != status:
            issues.append(f"`status` {problem.get('status')!r} is not {status}")
        if expected_pointer is not None:
            found = problem.get("pointer")
            if expected_pointer is True:
                if not isinstance(found, str) or not found.startswith("/"):
                    issues.append(f"`pointer` to the field at fault missing (found {found!r})")
            elif found not in (expected_pointer if isinstance(expected_pointer, tuple)
                               else (expected_pointer,)):
                issues.append(f"`pointer` {found!r} is not {expected_pointer!r}")
        if status == 409 and party is not None:
            want = {"seq": party.seq, "hash": party.head}
            if problem.get("head") != want:
                issues.append(f"`head` {problem.get('head')!r} is not the publisher's head {want}")
        self.ck.check(not issues, f"{label}: problem+json body (type, title, status, detail"
                      f"{', pointer' if expected_pointer is not None else ''}"
                      f"{', head' if status == 409 else ''})", "all present", "; ".join(issues))

    def refuse(self, payload, label, expect, party=None, pointer=None, route="single",
               content_type=None):
        """Submits something that must be refused with `expect` (an int, or a tuple when the
        text allows several), then checks the problem and that nothing changed."""
        note = payload if isinstance(payload, Note) else None
        data = note.bytes if note else payload
        party = party or (note.party if note else None)
        known = party is not None and (party is self.operator or party.id in self.parties)
        before = self.checkpoint()
        head_before = self.api_head(party) if known else None
        if route == "single":
            r = self.post_note(data)
            status, body, ctype = r.status, r.json(), r.header("content-type")
        elif route == "batch-body":
            try:
                r = self.http.post_expect_continue("/api/v1/statements/batch", data,
                                                   "application/json")
            except NetworkError as e:
                # A server may answer a too-large body before reading it and close the
                # connection; a client that cannot read the answer has no answer.
                self.ck.check(False, f"refuse {label}: an answer", expect, str(e))
                return None
            status, body, ctype = r.status, r.json(), r.header("content-type")
        else:
            r = self.http.post("/api/v1/statements/batch",
                               jdump({"statements": [data.decode("utf-8")]}).encode(),
                               "application/json")
            res = ((r.json() or {}).get("results") or [{}])[0] if r.status == 200 else {}
            status, ctype = res.get("status"), None
            body = res.get("receipt") if status in (200, 201) else res.get("problem")
        allowed = expect if isinstance(expect, tuple) else (expect,)
        self.ck.check(status in allowed, f"refuse {label}: answered "
                      f"{' or '.join(map(str, allowed))}", " or ".join(map(str, allowed)),
                      f"{status} {short(r.body, 300)}")
        if status in (200, 201):
            # Accepted although it should not have been: keep the client's view in sync.
            if note and status == 201 and isinstance(body, dict):
                note.index, note.logged_at = body.get("index"), body.get("logged_at")
                self.by_index[note.index] = note
                note.party.logged(note)
            return status
        if route != "batch":
            self.ck.check(media_type(ctype) == PROBLEM_TYPE, f"refuse {label}: content type",
                          PROBLEM_TYPE, ctype)
        self.check_problem(body, status, f"refuse {label}", party if known else None, pointer)
        after = self.checkpoint()
        head_after = self.api_head(party) if known else None
        same = (before is not None and after is not None and before.size == after.size
                and before.root == after.root and head_before == head_after)
        self.ck.check(same, f"refuse {label}: nothing changed (checkpoint, publisher head)",
                      (before and before.size, head_before), (after and after.size, head_after))
        return status


# ---------------------------------------------------------------------------------------------
# Signature-line tampering for hostile notes
# ---------------------------------------------------------------------------------------------

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def with_noncanonical_base64(note):
    """The same signature bytes, but the last signature's base64 has a non-zero unused bit."""
    head, last = note[:-1].rsplit(b" ", 1)
    text = last.decode()
    stripped = text.rstrip("=")
    c = stripped[-1]
    flipped = B64_ALPHABET[B64_ALPHABET.index(c) ^ 1]
    return head + b" " + (stripped[:-1] + flipped + text[len(stripped):]).encode() + b"\n"


def with_malleated_s(note):
    """The last signature with S replaced by S + L: [S + L]B = [S]B, so a verifier that does
    not insist on S < L accepts it; strict verification refuses it."""
    head, last = note[:-1].rsplit(b" ", 1)
    raw = base64.b64decode(last)
    kid, sig = raw[:4], raw[4:]
    s_value = int.from_bytes(sig[32:], "little") + ED_L
    return head + b" " + b64(kid + sig[:32] + s_value.to_bytes(32, "little")).encode() + b"\n"


def replace_once(old, new):
    def transform(line):
        assert old in line, (old, line)
        return line.replace(old, new, 1)
    return transform


# ---------------------------------------------------------------------------------------------
# The scenario: every statement type, singly and in batches, and every class of refusal
# ---------------------------------------------------------------------------------------------

class Scenario:
    def __init__(self, client):
        self.c = client
        self.ck = client.ck
        self.seals = {}         # label -> dict(note, salt, request, party)
        self.requests = {}      # label -> Note

    def party(self, pid):
        return Party(self.c, pid, SecretKey.generate(pid), SecretKey.generate(pid))

    def register(self, party, name, url=None, label=None):
        fields = {"subject": party.id, "name": name,
                  "key": party.signing.vkey.text, "recovery_key": party.recovery.vkey.text}
        if url:
            fields["url"] = url
        note = self.c.operator.note("register", fields,
                                    signers=[self.c.operator.signing, party.signing])
        self.c.submit(note, label or f"register {party.id}")
        if note.index is not None:
            self.c.parties[party.id] = party
        return note

    def request(self, party, record, label, expect=201, **kw):
        note = party.note("request", record, **kw)
        self.c.submit(note, label, expect)
        self.requests[label] = note
        return note

    # --- start ---------------------------------------------------------------------------

    def start(self):
        c, ck = self.c, self.ck
        cp = c.checkpoint()
        if not ck.check(cp is not None, "GET /checkpoint verifies with the log key"):
            raise NetworkError("no verifiable checkpoint: is this a Candor server with these keys?")
        ck.equal(cp.origin, c.origin, "checkpoint origin is the log key's name")
        ck.equal(cp.size, 1, "a fresh log holds only the genesis entry (checkpoint size 1)")
        r = c.http.get("/api/v1/entries/0")
        entry = r.json() or {}
        ck.equal(r.status, 200, "GET /api/v1/entries/0 answers 200")
        note = (entry.get("statement") or "").encode()
        ok = verify_note_exact(note, [c.log_key, c.operator.signing.vkey])
        ck.check(ok, "genesis is signed by the log key, then the operator key, nothing else")
        body = strict_json(note_text(note)) if note else {}
        want = {"v": 1, "log": c.origin, "publisher": c.origin, "seq": 1, "prev": None,
                "type": "genesis", "operator_key": c.operator.signing.vkey.text}
        ck.equal({k: body.get(k) for k in want}, want, "genesis fields (publisher = origin, "
                 "seq 1, prev null, operator_key = operator.vkey)")
        c.today = datetime.date.fromisoformat(entry.get("logged_at", "2026-01-01")[:10])
        c.by_index[0] = Note(None, body, note, 1, note_text(note))
        c.by_index[0].index, c.by_index[0].logged_at = 0, entry.get("logged_at")
        op = c.http.get("/api/v1/operator").json() or {}
        ck.equal(op.get("head"), {"seq": 0, "hash": None},
                 "operator head before its first statement is seq 0, hash null "
                 "(the genesis is the origin's statement, not the operator's)")

    # --- publishers, requests, updates -----------------------------------------------------

    def publishers(self):
        self.A = self.party("acme.example")
        self.B = self.party("globex.example")
        self.C = self.party("initech.example")
        self.D = self.party("umbrella.example")
        self.E = self.party("bulk.example")
        self.register(self.A, "Acme Corp", "https://acme.example/transparency")
        self.register(self.B, "Globex", None)
        # 200 Unicode scalar values, 400 bytes: within `name` (<= 200).
        self.register(self.C, "é" * 200, "https://initech.example/",
                      label="register initech.example with a 200-character name of 2-byte "
                            "characters")
        self.register(self.D, "Umbrella", "https://umbrella.example/t")
        self.register(self.E, "Bulk Loader", "https://bulk.example/")

    def requests_and_updates(self):
        c, A = self.c, self.A
        r1 = self.request(A, user_data_record("DE", c.day(-200)), "request user_data")
        self.request(A, content_record("FR", c.day(-150)), "request content_restriction")
        self.request(A, account_record("TR", c.day(-400)), "request account_restriction")
        self.request(A, preservation_record("US", c.day(-500)), "request preservation")
        self.request(A, user_data_record("GB", c.day(0)),
                     "request received today (received_on = date of logged_at)")
        self.request(A, user_data_record("DE", c.day(-20), service="ü" * 100),
                     "request with service of 100 two-byte characters (lengths count scalar "
                     "values)")
        self.request(A, user_data_record("DE", c.day(-21), service="😀" * 100),
                     "request with service of 100 astral characters (one scalar value each)")
        spaced = A.note("request", preservation_record("NL", c.day(-30)),
                        transform=lambda line: line.replace('":', '": ').replace(',"', ', "'))
        c.submit(spaced, "request whose JSON line has insignificant spaces between tokens")
        self.requests["spaced"] = spaced
        tricky = A.note("request", user_data_record("DE", c.day(-22), notes="PLACE"),
                        transform=replace_once("PLACE", 'C:\\\\x \\"q\\" caf\\u00e9 '
                                                        '\\ud83d\\ude00 — ü'))
        c.submit(tricky, "request whose JSON strings hold backslashes, quotes, \\u escapes (a "
                 "surrogate pair included) and raw UTF-8")
        # Duplicate: the same bytes again.
        c.submit(r1, "resend the same note bytes (duplicate)", expect=200, duplicate_of=r1)
        # Updates (RFC 7396 merge patches), several on one request.
        self.upd1 = A.note("update", {"of": r1.id, "patch": {
            "disposition": "complied", "responded_on": c.day(-190),
            "produced": ["subscriber"], "authority": {"name": "BKA"}}})
        c.submit(self.upd1, "update a request (merge patch: add fields, nested object)")
        content = self.requests["request content_restriction"]
        c.submit(A.note("update", {"of": content.id, "patch": {
            "scope": "national", "territories": None, "reasons": ["copyright"]}}),
            "update removing a field with null and replacing an array")
        c.submit(A.note("update", {"of": content.id, "patch": {"disposition": "complied",
                                                              "targets": {"accounts": 1}}}),
                 "second update of the same request")

    # --- seals ---------------------------------------------------------------------------

    def seal(self, party, label, record, disclose_by, basis, kind=None, country=None):
        salt = os.urandom(32)
        request_string = jdump(record)
        fields = {"commitment": seal_commitment(self.c.origin, party.id, salt, request_string),
                  "disclose_by": disclose_by, "basis": basis}
        if kind:
            fields["kind"] = kind
        if country:
            fields["country"] = country
        note = party.note("seal", fields)
        self.c.submit(note, f"seal {label}")
        self.seals[label] = {"note": note, "salt": salt, "request": request_string,
                             "party": party, "record": record}
        return note

    def reveal_note(self, label, request_string=None, salt=None):
        s = self.seals[label]
        return s["party"].note("reveal", {"of": s["note"].id, "salt": (salt or s["salt"]).hex(),
                                          "request": request_string or s["request"]})

    def seals_flow(self):
        c, A = self.c, self.A
        self.seal(A, "s1", user_data_record("DE", c.day(-60)), c.day(200), "non_disclosure_order",
                  kind="user_data", country="DE")
        c.submit(A.note("extend", {"of": self.seals["s1"]["note"].id, "disclose_by": c.day(400),
                                   "reason": "order renewed"}), "extend seal s1")
        self.reveal_s1 = self.reveal_note("s1")
        c.submit(self.reveal_s1, "reveal seal s1")
        c.submit(A.note("update", {"of": self.seals["s1"]["note"].id,
                                   "patch": {"disposition": "complied",
                                             "targets": {"accounts": 3}}}),
                 "update a revealed seal (named by the seal's id)")
        self.seal(A, "s2 (past disclose_by: overdue from the start)",
                  user_data_record("US", c.day(-90)), c.day(-10), "court_seal")
        self.seal(A, "s3", content_record("IN", c.day(-50)), c.day(30), "foreign_law",
                  kind="content_restriction", country="IN")
        c.submit(A.note("extend", {"of": self.seals["s3"]["note"].id, "disclose_by": c.day(60),
                                   "reason": "foreign law"}), "extend seal s3")
        self.seal(A, "s4", user_data_record("BR", c.day(-70)), c.day(100), "other",
                  kind="user_data", country="BR")
        self.seal(A, "s5 (overdue, then extended into the future)",
                  account_record("RU", c.day(-80)), c.day(-40), "non_disclosure_order")
        c.submit(A.note("extend", {"of": self.seals["s5 (overdue, then extended into the future)"]
                                   ["note"].id, "disclose_by": c.day(10), "reason": "renewed"}),
                 "extend overdue seal s5")
        # A seal of B's, for the cross-publisher checks.
        self.seal(self.B, "b1", user_data_record("DE", c.day(-5)), c.day(300), "court_seal",
                  country="DE")

    # --- aggregates and bands ------------------------------------------------------------

    def aggregates_and_bands(self):
        c, A = self.c, self.A
        half = f"{c.today.year}-H{1 if c.today.month <= 6 else 2}"
        self.agg1 = A.note("aggregate", {"period": half, "country": "DE", "kind": "user_data",
                                         "service": "Mail", "requests": 120,
                                         "targets": {"accounts": 300}, "produced": 80})
        c.submit(self.agg1, "aggregate (half-year period)")
        c.submit(A.note("aggregate", {"period": str(c.today.year - 1), "country": "US",
                                      "kind": "content_restriction", "requests": 40,
                                      "targets": {"items": 90, "urls": 7}}),
                 "aggregate (year period)")
        c.submit(A.note("aggregate", {"period": f"{c.today.year}-Q1", "country": "DE",
                                      "kind": "preservation", "requests": 5,
                                      "targets": {"identifiers": 5}, "produced": 5}),
                 "aggregate (quarter period)")
        c.submit(self.B.note("aggregate", {"period": f"{c.today.year}-03", "country": "FR",
                                           "kind": "account_restriction", "requests": 2,
                                           "targets": {"accounts": 2}}),
                 "aggregate (month period)")
        c.submit(A.note("update", {"of": self.agg1.id, "patch": {"requests": 125,
                                                                "produced": None}}),
                 "update an aggregate")
        self.band1 = A.note("band", {"period": f"{c.today.year}-H1", "category": "nsl",
                                     "requests": {"min": 0, "max": 249},
                                     "accounts": {"min": 0, "max": 249}})
        c.submit(self.band1, "band")
        c.submit(A.note("band", {"period": f"{c.today.year - 1}-H2", "category": "fisa_content",
                                 "requests": {"min": 0, "max": 499},
                                 "accounts": {"min": 500, "max": 999}}), "second band")

    # --- keys: rotate, revoke, recover ---------------------------------------------------

    def rotate(self, party, label, new=None):
        new = new or SecretKey.generate(party.id)
        note = party.note("rotate", {"key": new.vkey.text}, signers=[party.signing, new])
        self.c.submit(note, label)
        old = party.signing
        if note.index is not None:
            party.signing = new
        return old, note

    def keys_flow(self):
        c, A, B = self.c, self.A, self.B
        self.b_req1 = self.request(B, user_data_record("DE", c.day(-100)), "globex: request")
        self.a_before_rotate = A.notes[-1]
        self.A_old, _ = self.rotate(A, "rotate acme's signing key")
        self.request(A, user_data_record("AT", c.day(-3)), "request signed by the rotated key")
        self.refuse_old_key = A.note("request", user_data_record("AT", c.day(-3)),
                                     signers=[self.A_old])
        c.refuse(self.refuse_old_key, "403 request signed by the key rotated away", 403)
        c.submit(self.a_before_rotate, "resend a statement signed by the old key, after the "
                 "rotation (duplicate is checked before authority)", expect=200,
                 duplicate_of=self.a_before_rotate)
        revoke = c.operator.note("revoke", {"subject": B.id, "reason": "key compromised"})
        c.submit(revoke, "revoke globex.example")
        c.refuse(B.note("request", user_data_record("DE", c.day(-4))),
                 "403 request from a revoked publisher", 403)
        c.submit(self.b_req1, "resend a revoked publisher's logged statement (duplicate is "
                 "checked before authority)", expect=200, duplicate_of=self.b_req1)
        self.B_old = B.signing
        newB = SecretKey.generate(B.id)
        rec = B.note("recover", {"key": newB.vkey.text, "reason": "lost the signing key"},
                     signers=[B.recovery, newB])
        c.submit(rec, "recover globex.example (recovery key, then the new key)")
        if rec.index is not None:
            B.signing = newB
        self.request(B, user_data_record("DE", c.day(-2)), "globex: request after recovery")
        c.refuse(B.note("request", user_data_record("DE", c.day(-2)), signers=[self.B_old]),
                 "403 request signed by the key replaced by recover", 403)

    # --- batches -------------------------------------------------------------------------

    def batches(self):
        c, C, D = self.c, self.C, self.D
        # A batch chaining one publisher's statements, rotating and using the new key at once.
        items = []
        r1 = C.note("request", user_data_record("JP", c.day(-33)))
        C.logged(r1)    # provisional: later items chain on it; the receipts confirm it
        items.append(r1)
        r2 = C.note("request", content_record("JP", c.day(-32), scope="global",
                                              territories=None))
        C.logged(r2)
        items.append(r2)
        u = C.note("update", {"of": r1.id, "patch": {"disposition": "no_data"}})
        C.logged(u)
        items.append(u)
        newC = SecretKey.generate(C.id)
        rot = C.note("rotate", {"key": newC.vkey.text}, signers=[C.signing, newC])
        C.logged(rot)
        items.append(rot)
        oldC, C.signing = C.signing, newC
        r3 = C.note("request", account_record("JP", c.day(-31)))
        C.logged(r3)
        items.append(r3)
        items.append(r2)    # the same bytes again, inside the same batch: a duplicate
        agg = C.note("aggregate", {"period": f"{c.today.year}-H1", "country": "JP",
                                   "kind": "user_data", "requests": 9, "targets": {"accounts": 9}})
        C.logged(agg)
        items.append(agg)
        # Undo the provisional chain: accept_receipt replays it from the answers.
        C.seq, C.head, C.notes, C.signing = 0, None, [], oldC
        results = c.submit_batch(items, "batch chaining initech's statements (request, request, "
                                 "update, rotate, request with the new key, duplicate, aggregate)",
                                 [201, 201, 201, 201, 201, 200, 201])
        if len(results) > 3 and results[3].get("status") == 201:
            C.signing = newC

        # A batch with refused items in the middle: they change nothing, so the next item
        # chains on the last accepted one.
        items, expected = [], []

        def add(note, status, provisional=False):
            items.append(note)
            expected.append(status)
            if provisional:
                D.logged(note)
        add(D.note("request", preservation_record("CA", c.day(-12))), 201, True)
        add(D.note("request", preservation_record("CA", c.day(-12), bogus=1)), 422)
        add(D.note("request", preservation_record("CA", c.day(-11))), 201, True)  # same seq
        add(D.note("request", preservation_record("CA", c.day(-11)), seq=D.seq + 5), 409)
        add(D.note("request", preservation_record("CA", c.day(-11)), signers=[self.A.signing]),
            403)
        add(D.note("request", preservation_record("CA", c.day(-10))), 201, True)
        D.seq, D.head, D.notes = 0, None, []
        c.submit_batch(items, "batch with refused items in the middle (422, 409, 403)", expected)

    def bulk(self, count=290):
        """Enough itemised demands from one publisher, in one batch, to fill a whole level-0
        tile and give the statistics something to count."""
        c, E = self.c, self.E
        rng = random.Random(20261129)
        items, targets = [], []
        for i in range(count):
            record = random_record(rng, c.today)
            n = E.note("request", record)
            E.logged(n)
            items.append(n)
            targets.append(n)
            if i % 15 == 14:
                victim = rng.choice(targets)
                patch = {"disposition": rng.choice(DISPOSITIONS)}
                if rng.random() < 0.5:
                    patch["targets"] = {"accounts": rng.randrange(0, 50), "urls": None}
                u = E.note("update", {"of": victim.id, "patch": patch})
                E.logged(u)
                items.append(u)
        E.seq, E.head, E.notes = 0, None, []
        results = c.submit_batch(items, f"bulk batch of {len(items)} chained statements",
                                 [201] * len(items), quiet=True)
        return results


COUNTRIES = ["DE", "FR", "US", "GB", "BR", "IN", "TR", "JP", "EU", "XK"]
DISPOSITIONS = ["pending", "complied", "partially_complied", "rejected", "no_data", "withdrawn",
                "challenged", "actioned_under_terms"]
REASONS = ["defamation", "national_security", "hate_speech", "privacy", "copyright",
           "trademark", "fraud", "terrorism", "child_safety", "election", "other"]
AUTHORITIES = ["court", "prosecutor", "police", "national_security", "regulator", "executive",
               "other"]


def random_record(rng, today):
    kind = rng.choice(["user_data", "user_data", "content_restriction", "account_restriction",
                       "preservation"])
    received = today - datetime.timedelta(days=rng.randrange(0, 700))
    targets = {}
    for t in rng.sample(["accounts", "identifiers", "items", "urls"], rng.randrange(1, 4)):
        targets[t] = rng.randrange(0, 40)
    r = {"kind": kind, "channel": rng.choice(["legal_process", "emergency",
                                              "mutual_legal_assistance", "informal"]),
         "process": rng.choice(["subpoena", "court_order", "search_warrant", "production_order",
                                "administrative_order", "removal_order", "none", "other"]),
         "country": rng.choice(COUNTRIES),
         "authority": {"type": rng.choice(AUTHORITIES)},
         "received_on": received.isoformat(), "targets": targets,
         "disposition": rng.choice(DISPOSITIONS),
         "user_notified": rng.choice(["yes", "no", "prohibited", "delayed"])}
    if rng.random() < 0.4:
        r["responded_on"] = min(today, received + datetime.timedelta(days=rng.randrange(0, 30))
                                ).isoformat()
    if rng.random() < 0.3:
        r["service"] = rng.choice(["Mail", "Video", "Cloud, Storage", 'Chat "beta"'])
    if kind == "user_data":
        cats = rng.sample(["subscriber", "non_content", "content", "location", "real_time"],
                          rng.randrange(1, 4))
        r["data_categories"] = cats
        if rng.random() < 0.5:
            r["produced"] = cats[:rng.randrange(0, len(cats) + 1)]
    if kind == "content_restriction":
        r["reasons"] = rng.sample(REASONS, rng.randrange(1, 4))
    if kind in ("content_restriction", "account_restriction"):
        r["scope"] = rng.choice(["global", "national", "regional"])
        if r["scope"] == "regional":
            r["territories"] = rng.sample(COUNTRIES[:8], rng.randrange(1, 3))
        if rng.random() < 0.5:
            r["actioned"] = {"accounts": rng.randrange(0, 5)}
    return r


class Hostile:
    """Refusals: for each step of the section-5 order, several statements, some breaking two
    rules at once to see which status wins. Each checks the status, the problem body and
    that nothing changed."""

    def __init__(self, scenario):
        self.s = scenario
        self.c = scenario.c

    def rec(self, **kw):
        record = user_data_record("DE", self.c.day(-7))
        record.update(kw)
        return {k: v for k, v in record.items() if v is not None}

    def sized(self, party, total):
        """A request note of exactly `total` bytes, padded in its `notes` field."""
        sid = str(uuid.uuid4())

        def make(k):
            return party.note("request", self.rec(notes="a" * k), sid=sid)
        n = make(1000)
        n = make(1000 + total - len(n.bytes))
        assert len(n.bytes) == total
        return n

    def run(self):
        self.too_large()
        self.malformed()
        self.authority()
        self.content()
        self.order()
        self.via_batch()

    # 1. size ----------------------------------------------------------------------------

    def too_large(self):
        c, A = self.c, self.s.A
        big = self.sized(A, 30001)
        c.refuse(big, "413 a note of 30,001 bytes (whose notes field is also too long)", 413)
        broken = big.bytes.replace(b"aaaa", b"\xff\xfe\x00a", 1)
        c.refuse(broken, "413 a note of 30,001 bytes that is also not UTF-8, has a control "
                 "character and a bad signature", 413, party=A)
        exact = self.sized(A, 30000)
        c.refuse(exact, "422 (not 413) a note of exactly 30,000 bytes whose notes field is "
                 "too long", 422, pointer="/notes")
        c.refuse(jdump({"statements": ["x"] * 1001}).encode(),
                 "413 a batch of 1001 items (none looked at)", 413, party=A, route="batch-body")
        filler = "x" * 29000
        body = jdump({"statements": [filler] * 290}).encode()
        assert len(body) > 8 * 1024 * 1024
        c.refuse(body, f"413 a batch of {len(body)} bytes (> 8 MiB)", 413, party=A,
                 route="batch-body")
        self.batch_at_limit("a batch of exactly 1000 items", ["x"] * 1000)
        items = ["x" * 29000] * 289
        base = len(jdump({"statements": items + [""]}).encode())
        items.append("x" * (8 * 1024 * 1024 - base))
        self.batch_at_limit("a batch of exactly 8 MiB (8,388,608 bytes)", items)
        c.refuse(b"{not json", "400 a batch body that is not JSON", 400, party=A,
                 route="batch-body")
        c.refuse(b'{"statements":"x"}', "400 a batch whose statements is not an array", 400,
                 party=A, route="batch-body")

    def batch_at_limit(self, label, items):
        """A batch at a limit is not refused as a whole: each (malformed) item gets its 400."""
        body = jdump({"statements": items}).encode()
        r = self.c.http.post_expect_continue("/api/v1/statements/batch", body,
                                             "application/json")
        results = (r.json() or {}).get("results") if r.status == 200 else None
        statuses = sorted(set(x.get("status") for x in results or []))
        self.c.ck.check(r.status == 200 and isinstance(results, list)
                        and len(results) == len(items) and statuses == [400],
                        f"{label} is looked at: 200, one 400 per malformed item", f"200 with {len(items)} results of 400",
                        f"{r.status}, {len(results or [])} results of {statuses} "
                        f"{short(r.body, 200) if r.status != 200 else ''}")

    # 2. form ----------------------------------------------------------------------------

    def malformed(self):
        c, A, op = self.c, self.s.A, self.c.operator
        seq = A.seq + 1
        # (label, note, pointer): the pointer where one field is at fault (6.2).
        cases = [
            ("not UTF-8", A.note("request", self.rec(notes="PLACE"),
                                 transform=lambda l: l.encode().replace(b"PLACE", b"ab\xffcd")),
             None),
            ("a duplicate object key", A.note("request", self.rec(),
                                              transform=lambda l: l[:-1] + ',"country":"FR"}'),
             "/country"),
            ("an integer with a leading zero", A.note("request", self.rec(),
                                                      transform=replace_once(f'"seq":{seq}',
                                                                             f'"seq":0{seq}')),
             "/seq"),
            ("an integer above 2^53-1", A.note("request", self.rec(
                targets={"accounts": 2 ** 53})), "/targets/accounts"),
            ("an uppercase UUID", A.note("request", self.rec(), sid=str(uuid.uuid4()).upper()),
             "/id"),
            ("uppercase hex in prev", A.note("request", self.rec(), prev=A.head.upper()),
             "/prev"),
            ("uppercase hex in document_sha256", A.note("request", self.rec(
                document_sha256="AB" * 32)), "/document_sha256"),
            ("uppercase hex in a seal's commitment", A.note("seal", {
                "commitment": "CD" * 32, "disclose_by": c.day(30), "basis": "other"}),
             "/commitment"),
            ("a raw tab between tokens", A.note("request", self.rec(),
                                                transform=replace_once(',"type"', ',\t"type"')),
             None),
            ("a carriage return before the newline", A.note(
                "request", self.rec(), transform=lambda l: l + "\r"), None),
            ("a lone surrogate escape", A.note("request", self.rec(notes="SURR"),
                                               transform=replace_once("SURR", "\\ud800")),
             "/notes"),
            ("a JSON object over two lines", A.note("request", self.rec(),
                                                    transform=replace_once(',"type"',
                                                                           ',\n"type"')), None),
            ("a JSON array, not an object", A.note("request", self.rec(),
                                                   transform=lambda l: "[" + l + "]"), None),
            ("a JSON string, not an object", A.note("request", self.rec(),
                                                    transform=lambda l: jdump(l)), None),
        ]
        for label, note, pointer in cases:
            c.refuse(note, f"400 {label}", 400, pointer=pointer)
        n = A.note("request", self.rec())
        c.refuse(with_noncanonical_base64(n.bytes), "400 non-canonical base64 in a signature",
                 400, party=A)
        sigline = n.bytes[len(note_text(n.bytes)) + 1:]
        c.refuse(note_text(n.bytes) + sigline, "400 no blank line before the signatures",
                 400, party=A)
        c.refuse(note_text(n.bytes) + b"\n", "400 no signature line", 400, party=A)
        c.refuse(A.note("request", self.rec(), log="other.example/log",
                        transform=lambda l: l[:-1] + ',"seq":1}'),
                 "400 (not 403) a duplicate key in a statement for another log", 400)
        c.refuse(A.note("request", self.rec(bogus=1), sid=str(uuid.uuid4()).upper(),
                        seq=A.seq + 4),
                 "400 (not 422 or 409) an uppercase UUID with an unknown field and a seq gap",
                 400)
        c.refuse(with_noncanonical_base64(op.note("request", self.rec()).bytes),
                 "400 (not 403) non-canonical base64 on a statement the operator may not make",
                 400, party=op)
        # An escaped control character (`\t` inside a string): "no control characters
        # anywhere" may or may not cover escaped ones. Either answer is accepted; the
        # server's is recorded.
        probe = A.note("request", self.rec(notes="TAB"), transform=replace_once("TAB", "a\\tb"))
        r = c.post_note(probe.bytes)
        c.ck.check(r.status in (201, 400), "a JSON string with an escaped tab (\\t): 201 or 400",
                   "201 or 400", f"{r.status} {short(r.body, 200)}")
        c.ck.reading("an escaped control character (\\t) in a JSON string", str(r.status))
        if r.status == 201:
            c.accept_receipt(r.json(), probe, "escaped tab", 201)

    # 4. authority -----------------------------------------------------------------------

    def authority(self):
        c, s, A, B, op = self.c, self.s, self.s.A, self.s.B, self.c.operator
        stranger = s.party("nobody.example")
        impostor = SecretKey.generate(A.id)
        subject = s.party("subject403.example")
        reg_fields = {"subject": subject.id, "name": "X", "key": subject.signing.vkey.text,
                      "recovery_key": subject.recovery.vkey.text}
        cases = [
            ("`log` is not the origin", A.note("request", self.rec(), log="other.example/log")),
            ("(not 422) `log` is not the origin and there is an unknown field",
             A.note("request", self.rec(bogus=True), log="other.example/log")),
            ("an unknown publisher", stranger.note("request", self.rec())),
            ("signed by another publisher's key", A.note("request", self.rec(),
                                                         signers=[B.signing])),
            ("signed by an unregistered key of the publisher's name",
             A.note("request", self.rec(), signers=[impostor])),
            ("an extra signature line", A.note("request", self.rec(),
                                               signers=[A.signing, impostor])),
            ("the same signature line twice", A.note("request", self.rec(),
                                                     signers=[A.signing, A.signing])),
            ("a register without the subject's signature",
             op.note("register", reg_fields, signers=[op.signing])),
            ("a register signed in the wrong order",
             op.note("register", reg_fields, signers=[subject.signing, op.signing])),
            ("a register made by a publisher",
             A.note("register", reg_fields, signers=[A.signing, subject.signing])),
            ("a revoke made by a publisher",
             A.note("revoke", {"subject": self.s.D.id, "reason": "no"})),
            ("a request made by the operator", op.note("request", self.rec())),
            ("a second genesis, signed by the operator only",
             op.note("genesis", {"operator_key": op.signing.vkey.text})),
            ("a rotate without the new key's signature",
             A.note("rotate", {"key": impostor.vkey.text})),
            ("a recover signed by the signing key instead of the recovery key",
             A.note("recover", {"key": impostor.vkey.text, "reason": "x"},
                    signers=[A.signing, impostor])),
            ("(not 409) a bad signature and a seq gap",
             A.note("request", self.rec(), seq=A.seq + 3, signers=[impostor])),
            ("(not 422) a bad signature and an invalid record",
             A.note("request", self.rec(country="ZZ"), signers=[impostor])),
        ]
        for label, note in cases:
            pointer = "/log" if label == "`log` is not the origin" else None
            c.refuse(note, f"403 {label}", 403, pointer=pointer)
        n = A.note("request", self.rec())
        c.refuse(with_malleated_s(n.bytes), "403 a signature with S + L (not canonical: refused "
                 "by strict verification)", 403, party=A)

    # 5. content -------------------------------------------------------------------------

    def content(self):
        c, s, A, op = self.c, self.s, self.s.A, self.c.operator
        r1 = s.requests["request user_data"]
        no_cats = self.rec()
        del no_cats["data_categories"]
        cases = [
            ("an unknown field", A.note("request", self.rec(bogus=1)), "/bogus"),
            ("user_data without data_categories", A.note("request", no_cats),
             "/data_categories"),
            ("received_on after the date of logged_at",
             A.note("request", self.rec(received_on=c.day(2))), "/received_on"),
            ("responded_on before received_on",
             A.note("request", self.rec(responded_on=c.day(-8))), True),
            ("a date that is not a calendar date",
             A.note("request", self.rec(received_on="2025-02-30")), "/received_on"),
            ("a country not in countries.json", A.note("request", self.rec(country="ZZ")),
             "/country"),
            ("produced not a subset of data_categories",
             A.note("request", self.rec(produced=["content"])), True),
            ("a service of 101 characters (2-byte characters)",
             A.note("request", self.rec(service="ü" * 101)), "/service"),
            ("a content_restriction without reasons",
             A.note("request", content_record("FR", c.day(-7), reasons=None)), "/reasons"),
            ("scope regional without territories",
             A.note("request", content_record("FR", c.day(-7), territories=None)),
             "/territories"),
            ("data_categories on a preservation",
             A.note("request", preservation_record("US", c.day(-7),
                                                   data_categories=["subscriber"])), True),
            ("a band whose min exceeds its max",
             A.note("band", {"period": f"{c.today.year}-H1", "category": "fisa_non_content",
                             "requests": {"min": 500, "max": 249},
                             "accounts": {"min": 0, "max": 249}}), True),
            ("a band with a quarter period",
             A.note("band", {"period": f"{c.today.year}-Q1", "category": "nsl",
                             "requests": {"min": 0, "max": 249},
                             "accounts": {"min": 0, "max": 249}}), "/period"),
            ("an aggregate with period 2026-H3",
             A.note("aggregate", {"period": "2026-H3", "country": "DE", "kind": "user_data",
                                  "requests": 1, "targets": {"accounts": 1}}), "/period"),
            ("an update changing kind",
             A.note("update", {"of": r1.id, "patch": {"kind": "preservation",
                                                      "data_categories": None,
                                                      "produced": None}}), None),
            ("an update whose result lacks a required field",
             A.note("update", {"of": r1.id, "patch": {"country": None}}), None),
            ("an update adding an unknown field",
             A.note("update", {"of": r1.id, "patch": {"bogus": 1}}), None),
            ("an extend with a reason of 501 characters",
             A.note("extend", {"of": s.seals["s3"]["note"].id, "disclose_by": c.day(900),
                               "reason": "r" * 501}), "/reason"),
            ("(not 409) an unknown field and a seq gap",
             A.note("request", self.rec(bogus=1), seq=A.seq + 2), "/bogus"),
            ("`v` 2", A.note("request", self.rec(), transform=replace_once('"v":1', '"v":2')),
             "/v"),
            ("a statement without `id`",
             A.note("request", self.rec(), transform=lambda l: re.sub(r',"id":"[^"]*"', "", l)),
             None),
            ("targets with no count", A.note("request", self.rec(targets={})), "/targets"),
            ("territories with scope national",
             A.note("request", content_record("FR", c.day(-7), scope="national")),
             "/territories"),
            ("actioned on a user_data request",
             A.note("request", self.rec(actioned={"accounts": 1})), "/actioned"),
            ("an unknown field inside authority",
             A.note("request", self.rec(authority={"type": "police", "x": 1})), "/authority/x"),
        ]
        for label, note, pointer in cases:
            c.refuse(note, f"422 {label}", 422, pointer=pointer)
        st = c.refuse(A.note("request", self.rec(), transform=replace_once('"type":"request"',
                                                                         '"type":"subpoena"')),
                      "403 or 422 a statement of an unknown type", (403, 422))
        c.ck.reading("a statement of an unknown type", str(st))

        # Registrations.
        def reg(pid, **over):
            p = s.party(pid)
            fields = {"subject": pid, "name": "N", "key": p.signing.vkey.text,
                      "recovery_key": p.recovery.vkey.text}
            fields.update(over)
            return op.note("register", fields, signers=[op.signing, p.signing]), p
        other = SecretKey.generate("other.example")
        named = s.party("named.example")
        n = op.note("register", {"subject": named.id, "name": "N", "key": other.vkey.text,
                                 "recovery_key": named.recovery.vkey.text},
                    signers=[op.signing, other])
        c.refuse(n, "422 a register whose key is named by another name than the subject", 422,
                 pointer="/key")
        c.refuse(reg("url.example", url="http://url.example/")[0],
                 "422 a register whose url is not https", 422, pointer="/url")
        c.refuse(reg("long.example", name="é" * 201)[0],
                 "422 a register whose name has 201 characters", 422, pointer="/name")
        c.refuse(reg("Upper.example")[0], "422 a register of an id that is not lowercase", 422,
                 pointer="/subject")
        c.refuse(reg("nodot")[0], "422 a register of an id without a dot", 422, pointer="/subject")
        c.refuse(reg("bad-.example")[0], "422 a register of an id with a label ending in -", 422,
                 pointer="/subject")
        same = s.party("same.example")
        st = c.refuse(op.note("register", {"subject": same.id, "name": "S",
                                           "key": same.signing.vkey.text,
                                           "recovery_key": same.signing.vkey.text},
                              signers=[op.signing, same.signing]),
                      "409 or 422 a register whose recovery key is its signing key (a public key "
                      "is registered only once)", (409, 422))
        c.ck.reading("a register whose recovery key is its signing key", str(st))
        wrong = s.party("wrongid.example")
        name_, _, key64 = wrong.signing.vkey.text.split("+", 2)
        st = c.refuse(op.note("register", {"subject": wrong.id, "name": "W",
                                           "key": f"{name_}+00000000+{key64}",
                                           "recovery_key": wrong.recovery.vkey.text},
                              signers=[op.signing, wrong.signing]),
                      "403 or 422 a register whose key has a wrong key id", (403, 422))
        c.ck.reading("a register whose key has a wrong key id", str(st))
        host = c.origin.split("/")[0]
        if "." in host:
            n, _ = reg(host)
            c.refuse(n, "422 a register of the origin's host as a publisher id", 422,
                     pointer="/subject")
        # A weak (small-order) key, "signed" with R = B, S = 1: a lax verifier accepts it.
        weak = weak_vkey_text("weak.example")
        p = s.party("weak.example")
        body = op.body("register", {"subject": "weak.example", "name": "W", "key": weak,
                                    "recovery_key": p.recovery.vkey.text})
        text = jdump(body).encode() + b"\n"
        base_point = bytes.fromhex("58" + "66" * 31)
        forged = parse_vkey_unchecked(weak).id + base_point + (1).to_bytes(32, "little")
        note = (sign_note(text, [op.signing]) + f"— weak.example {b64(forged)}\n".encode())
        st = c.refuse(note, "403 or 422 a register of a weak (small-order) key", (403, 422),
                      party=op)
        c.ck.reading("a register of a weak (small-order) key", str(st))

        # Seals and reveals.
        def odd_seal(label, record, request_string=None, **fields):
            salt = os.urandom(32)
            rs = request_string or jdump(record)
            seal_fields = {"commitment": seal_commitment(c.origin, A.id, salt, rs),
                           "disclose_by": c.day(100), "basis": "non_disclosure_order"}
            seal_fields.update(fields)
            note = A.note("seal", seal_fields)
            c.submit(note, f"seal {label}")
            s.seals[label] = {"note": note, "salt": salt, "request": rs, "party": A,
                              "record": record}
        odd_seal("s6 (kind user_data, committing to a content_restriction)",
                 content_record("DE", c.day(-9)), kind="user_data")
        odd_seal("s7 (country DE, committing to a request from FR)",
                 user_data_record("FR", c.day(-9)), country="DE")
        odd_seal("s9 (committing to a record with an unknown field)",
                 user_data_record("FR", c.day(-9), bogus=1))
        two_lines = user_data_record("FR", c.day(-9))
        odd_seal("s10 (committing to a record written over two lines)", two_lines,
                 request_string=json.dumps(two_lines, indent=1, ensure_ascii=False))
        odd_seal("s8 (committing to a national security letter)",
                 user_data_record("US", c.day(-9), process="national_security_letter"),
                 kind="user_data", country="US")
        c.refuse(s.reveal_note("s4", salt=os.urandom(32)),
                 "422 a reveal that does not match the commitment (wrong salt)", 422)
        c.refuse(s.reveal_note("s4", request_string=jdump(user_data_record("BR", c.day(-71)))),
                 "422 a reveal that does not match the commitment (other record)", 422)
        c.refuse(s.reveal_note("s6 (kind user_data, committing to a content_restriction)"),
                 "422 a reveal matching the commitment but not the seal's kind", 422)
        c.refuse(s.reveal_note("s7 (country DE, committing to a request from FR)"),
                 "422 a reveal matching the commitment but not the seal's country", 422)
        c.refuse(s.reveal_note("s9 (committing to a record with an unknown field)"),
                 "422 a reveal (matching its commitment) of a record with an unknown field", 422)
        # Its `request` string holds escaped newlines: 422 (not one line of JSON) by this
        # client's reading, 400 if "no control characters anywhere" covers escaped ones.
        st = c.refuse(s.reveal_note("s10 (committing to a record written over two lines)"),
                      "400 or 422 a reveal (matching its commitment) of a request that is not "
                      "one line of JSON", (400, 422))
        c.ck.reading("a reveal whose request string holds escaped newlines", str(st))
        c.refuse(s.reveal_note("s8 (committing to a national security letter)"),
                 "422 a reveal of a national security letter (seals are never used for NSL "
                 "or FISA demands)", 422)
        c.refuse(s.reveal_note("s1", salt=os.urandom(32)),
                 "422 (not 409) a second reveal that also does not match the commitment", 422)

    # 6. order ---------------------------------------------------------------------------

    def order(self):
        c, s, A, op = self.c, self.s, self.s.A, self.c.operator
        r1 = s.requests["request user_data"]
        s3 = s.seals["s3"]["note"]
        rotate_id = next(n.id for n in A.notes if n.body["type"] == "rotate")
        cases = [
            ("a seq gap", A.note("request", self.rec(), seq=A.seq + 2), ("/seq", "/prev")),
            ("a wrong prev", A.note("request", self.rec(), prev="00" * 32), "/prev"),
            ("prev null with seq > 1", A.note("request", self.rec(), prev=None), "/prev"),
            ("a seq already used", A.note("request", self.rec(), seq=A.seq,
                                          prev=A.notes[-2].hash), ("/seq", "/prev")),
            ("an id already used by the publisher", A.note("request", self.rec(), sid=r1.id),
             "/id"),
            ("an update of another publisher's request",
             A.note("update", {"of": s.b_req1.id, "patch": {"disposition": "complied"}})),
            ("an update of no statement", A.note("update", {"of": str(uuid.uuid4()),
                                                            "patch": {"disposition": "complied"}})),
            ("an update of an unrevealed seal",
             A.note("update", {"of": s3.id, "patch": {"disposition": "complied"}})),
            ("an update of a band", A.note("update", {"of": s.band1.id,
                                                       "patch": {"category": "nsl"}})),
            ("a second reveal", s.reveal_note("s1")),
            ("an extend that does not postpone (same date)",
             A.note("extend", {"of": s3.id, "disclose_by": c.day(60), "reason": "r"}),
             "/disclose_by"),
            ("an extend to an earlier date",
             A.note("extend", {"of": s3.id, "disclose_by": c.day(45), "reason": "r"}),
             "/disclose_by"),
            ("an extend of another publisher's seal",
             A.note("extend", {"of": s.seals["b1"]["note"].id, "disclose_by": c.day(999),
                               "reason": "r"})),
            ("an extend of a request", A.note("extend", {"of": r1.id, "disclose_by": c.day(999),
                                                          "reason": "r"})),
            ("an update naming a rotate",
             A.note("update", {"of": rotate_id, "patch": {"disposition": "complied"}})),
            ("seq 1 with a prev for a publisher's first statement",
             s.E.note("request", self.rec(), seq=1, prev="ab" * 32), "/prev"),
        ]
        for case in cases:
            # The other cases all name the wrong thing in `of`.
            label, note, pointer = case if len(case) == 3 else (case[0], case[1], "/of")
            c.refuse(note, f"409 {label}", 409, pointer=pointer)
        # Registrations.
        again = s.party(A.id)
        c.refuse(op.note("register", {"subject": A.id, "name": "again",
                                      "key": again.signing.vkey.text,
                                      "recovery_key": again.recovery.vkey.text},
                         signers=[op.signing, again.signing]),
                 "409 a register of an existing subject", 409, pointer="/subject")
        reuse = SecretKey("reuse.example", A.signing.seed)
        fresh = SecretKey.generate("reuse.example")
        c.refuse(op.note("register", {"subject": "reuse.example", "name": "reuse",
                                      "key": reuse.vkey.text,
                                      "recovery_key": fresh.vkey.text},
                         signers=[op.signing, reuse]),
                 "409 a register of a public key already registered (under another name)", 409,
                 pointer="/key")
        taken = SecretKey(A.id, s.B.signing.seed)
        c.refuse(A.note("rotate", {"key": taken.vkey.text}, signers=[A.signing, taken]),
                 "409 a rotate to a public key already registered by another publisher", 409,
                 pointer="/key")

    # Through the batch route: the same status as alone.

    def via_batch(self):
        c, A = self.c, self.s.A
        big = self.sized(A, 30001)
        c.refuse(big, "batch item: 413 a note of 30,001 bytes", 413, route="batch")
        c.refuse(A.note("request", self.rec(), transform=lambda l: l[:-1] + ',"v":1}'),
                 "batch item: 400 a duplicate key", 400, route="batch")
        c.refuse(A.note("request", self.rec(), log="other.example/log"),
                 "batch item: 403 `log` not the origin", 403, route="batch")
        c.refuse(A.note("request", self.rec(bogus=1)), "batch item: 422 an unknown field", 422,
                 route="batch", pointer="/bogus")
        c.refuse(A.note("request", self.rec(), seq=A.seq + 2), "batch item: 409 a seq gap", 409,
                 route="batch")


def parse_vkey_unchecked(text):
    name, hex_id, key64 = text.split("+", 2)
    vk = VerifierKey(name, base64.b64decode(key64)[1:])
    return vk


# ---------------------------------------------------------------------------------------------
# The auditor: everything re-derived from what the static API serves
# ---------------------------------------------------------------------------------------------

CHECKPOINT_CACHE = "max-age=2"
TILE_CACHE = "public, max-age=31536000, immutable"


class PublisherState:
    def __init__(self, pid, name, url, signing, recovery, index):
        self.id = pid
        self.name = name
        self.url = url
        self.status = "active"
        self.signing = signing
        self.recovery = recovery
        self.keys = [{"vkey": signing.text, "role": "signing", "from": index + 1, "until": None}]
        if recovery is not None:
            self.keys.append({"vkey": recovery.text, "role": "recovery", "from": index + 1,
                              "until": None})
        self.seq = 0
        self.head = None
        self.registered_at = index
        self.ids = {}               # statement id -> entry index

    def set_signing(self, key, index):
        for k in self.keys:
            if k["role"] == "signing" and k["until"] is None:
                k["until"] = index + 1
        self.keys.append({"vkey": key.text, "role": "signing", "from": index + 1,
                          "until": None})
        self.signing = key


class LogModel:
    """The log's derived state, replayed from its entries by the auditor's own rules."""

    def __init__(self, origin):
        self.origin = origin
        self.operator_id = origin + "/operator"
        self.operator = None
        self.publishers = {}        # id -> PublisherState
        self.items = {}             # (publisher, id) -> request / aggregate / band / seal state
        self.demands = []           # (publisher, id) of itemised demands, in log order
        self.aggregates = []        # (publisher, id)
        self.bands = []
        self.seals = []
        self.entries = []           # (index, logged_at, note bytes, body)
        self.problems = []          # replay failures: the server accepted something invalid
        self.public_keys = {}       # public key bytes -> name

    def fail(self, index, what):
        self.problems.append(f"entry {index}: {what}")

    def key(self, text, name, index):
        try:
            vk = parse_vkey(text)
        except ValueError as e:
            self.fail(index, f"verifier key {text!r}: {e}")
            return None
        if vk.name != name:
            self.fail(index, f"key {text!r} is not named {name!r}")
        if vk.public in self.public_keys:
            self.fail(index, f"public key of {text!r} already registered at entry "
                             f"{self.public_keys[vk.public]}")
        self.public_keys[vk.public] = index
        return vk

    def replay(self, index, logged_at, note, log_key):
        try:
            body = strict_json(note_text(note).decode("utf-8"))
        except ValueError as e:
            self.fail(index, f"statement is not one line of JSON: {e}")
            return
        self.entries.append((index, logged_at, note, body))
        t = body.get("type")
        if index == 0:
            if t != "genesis" or body.get("publisher") != self.origin:
                self.fail(0, "entry 0 is not the genesis statement")
            op_key = self.key(body.get("operator_key", ""), self.operator_id, 0)
            if op_key is None or not verify_note_exact(note, [log_key, op_key]):
                self.fail(0, "genesis not signed by the log key then the operator key")
            self.operator = PublisherState(self.operator_id, None, None, op_key, None, 0) \
                if op_key else None
            return
        if t == "genesis":
            self.fail(index, "a genesis statement other than entry 0")
            return
        if body.get("log") != self.origin or body.get("v") != 1:
            self.fail(index, "`log` is not the origin or `v` is not 1")
        pid = body.get("publisher")
        party = self.operator if pid == self.operator_id else self.publishers.get(pid)
        if party is None:
            self.fail(index, f"unknown publisher {pid!r}")
            return
        operator_types = ("register", "revoke")
        if (party is self.operator) != (t in operator_types) and t != "rotate":
            self.fail(index, f"type {t} not allowed for {pid}")
        if party.status == "revoked" and t != "recover":
            self.fail(index, f"statement of revoked publisher {pid}")
        # Signatures under the keys in force.
        new_key = None
        if t in ("register", "rotate", "recover"):
            name = body.get("subject") if t == "register" else pid
            new_key = self.key(body.get("key", ""), name, index)
        if t == "register":
            signers = [party.signing, new_key]
        elif t == "rotate":
            signers = [party.signing, new_key]
        elif t == "recover":
            signers = [party.recovery, new_key]
        else:
            signers = [party.signing]
        if None in signers or not verify_note_exact(note, signers):
            self.fail(index, f"{t} not signed exactly by {[k and k.name for k in signers]}")
        # The publisher's chain.
        if body.get("seq") != party.seq + 1 or body.get("prev") != party.head:
            self.fail(index, f"chain: seq {body.get('seq')} prev {body.get('prev')} after head "
                             f"{party.seq} {party.head}")
        sid = body.get("id")
        if sid in party.ids:
            self.fail(index, f"id {sid} used twice by {pid}")
        party.ids[sid] = index
        party.seq = body.get("seq")
        party.head = statement_hash(note)
        fields = {k: v for k, v in body.items() if k not in COMMON_FIELDS}
        self.apply(index, logged_at, pid, sid, t, fields, party, new_key)

    def apply(self, index, logged_at, pid, sid, t, fields, party, new_key):
        if t == "register":
            sub = fields.get("subject")
            if sub in self.publishers:
                self.fail(index, f"register of existing subject {sub}")
            if sub == self.origin.split("/")[0]:
                self.fail(index, f"register of the origin's host {sub} as a publisher (section 2)")
            recovery = self.key(fields.get("recovery_key", ""), sub, index)
            self.publishers[sub] = PublisherState(sub, fields.get("name"), fields.get("url"),
                                                  new_key, recovery, index)
        elif t == "revoke":
            sub = self.publishers.get(fields.get("subject"))
            if sub is None:
                self.fail(index, "revoke of an unknown subject")
            else:
                sub.status = "revoked"
        elif t in ("rotate", "recover"):
            party.set_signing(new_key, index)
            if t == "recover":
                party.status = "active"
        elif t == "request":
            self.items[(pid, sid)] = {"type": "request", "index": index, "record": fields,
                                      "updates": [], "publisher": pid}
            self.demands.append((pid, sid))
        elif t == "aggregate":
            self.items[(pid, sid)] = {"type": "aggregate", "index": index, "report": fields,
                                      "updates": [], "publisher": pid}
            self.aggregates.append((pid, sid))
        elif t == "band":
            self.items[(pid, sid)] = {"type": "band", "index": index, "report": fields,
                                      "publisher": pid}
            self.bands.append((pid, sid))
        elif t == "seal":
            self.items[(pid, sid)] = {"type": "seal", "index": index, "seal": fields,
                                      "disclose_by": fields.get("disclose_by"), "extensions": [],
                                      "revealed": None, "updates": [], "publisher": pid}
            self.seals.append((pid, sid))
        elif t == "extend":
            seal = self.items.get((pid, fields.get("of")))
            if not seal or seal["type"] != "seal" or seal["revealed"]:
                self.fail(index, "extend of no open seal of this publisher")
            elif not fields.get("disclose_by", "") > seal["disclose_by"]:
                self.fail(index, "extend that does not postpone")
            else:
                seal["disclose_by"] = fields["disclose_by"]
                seal["extensions"].append(index)
        elif t == "reveal":
            seal = self.items.get((pid, fields.get("of")))
            if not seal or seal["type"] != "seal" or seal["revealed"]:
                self.fail(index, "reveal of no unrevealed seal of this publisher")
                return
            salt = bytes.fromhex(fields.get("salt", ""))
            want = seal_commitment(self.origin, pid, salt, fields.get("request", ""))
            if want != seal["seal"].get("commitment") or len(salt) != 32:
                self.fail(index, "reveal does not match its commitment")
            try:
                record = strict_json(fields.get("request", ""))
            except ValueError:
                self.fail(index, "revealed request is not JSON")
                return
            for f in ("kind", "country"):
                if f in seal["seal"] and record.get(f) != seal["seal"][f]:
                    self.fail(index, f"revealed {f} does not match the seal's")
            if record.get("process") in ("national_security_letter", "fisa_order"):
                self.fail(index, "a seal used for an NSL or FISA demand (section 3.1)")
            seal["revealed"] = {"index": index, "record": record}
            self.demands.append((pid, fields.get("of")))
        elif t == "update":
            item = self.items.get((pid, fields.get("of")))
            if not item or item["type"] not in ("request", "aggregate", "seal") or (
                    item["type"] == "seal" and not item["revealed"]):
                self.fail(index, "update of nothing it may name")
                return
            if item["type"] == "request":
                old = item["record"]
                item["record"] = merge_patch(old, fields.get("patch"))
                new = item["record"]
            elif item["type"] == "aggregate":
                old = item["report"]
                item["report"] = merge_patch(old, fields.get("patch"))
                new = item["report"]
            else:
                old = item["revealed"]["record"]
                item["revealed"]["record"] = merge_patch(old, fields.get("patch"))
                new = item["revealed"]["record"]
            if old.get("kind") != new.get("kind"):
                self.fail(index, "update changed kind")
            item["updates"].append(index)
        if (t in ("request",) and fields.get("received_on", "9999") > logged_at[:10]):
            self.fail(index, "received_on after the date of logged_at")

    # Demands, in merged state, for the statistics.

    def demand_records(self):
        out = []
        for pid, sid in self.demands:
            item = self.items[(pid, sid)]
            record = item["record"] if item["type"] == "request" else item["revealed"]["record"]
            out.append((pid, record))
        return out


class Auditor:
    def __init__(self, client):
        self.c = client
        self.ck = client.ck
        self.http = client.http

    def get(self, path):
        return self.http.get(path)

    def run(self):
        c, ck = self.c, self.ck
        r = self.get("/checkpoint")
        ck.equal(r.status, 200, "auditor: GET /checkpoint answers 200")
        ck.equal(r.header("content-type"), "text/plain; charset=utf-8",
                 "auditor: /checkpoint content type")
        ck.equal(r.header("cache-control"), CHECKPOINT_CACHE, "auditor: /checkpoint Cache-Control")
        cp = parse_checkpoint(r.body, c.log_key)
        c.note_root(cp.size, cp.root, "auditor")
        self.cp = cp
        n = cp.size
        ck.check(n >= 257, f"auditor: the log holds more than one tile of entries (size {n})")

        # Entry bundles.
        leaves, bad_headers, bundle_problems = [], [], []
        for level, idx, width in bundles_for_size(n):
            path = tile_path(level, idx, width)
            r = self.get("/" + path)
            if r.status != 200:
                bundle_problems.append(f"{path}: {r.status}")
                continue
            if (r.header("content-type") != "application/octet-stream"
                    or r.header("cache-control") != TILE_CACHE):
                bad_headers.append(f"{path}: {r.header('content-type')} / "
                                   f"{r.header('cache-control')}")
            try:
                got = split_bundle(r.body)
            except ValueError as e:
                bundle_problems.append(f"{path}: {e}")
                continue
            if len(got) != width:
                bundle_problems.append(f"{path}: {len(got)} entries, not {width}")
            leaves.extend(got)
        ck.check(not bundle_problems and len(leaves) == n,
                 f"auditor: every entry bundle of the tree (full and partial) is served and "
                 f"splits into its entries ({len(bundles_for_size(n))} bundles, {n} entries)",
                 "no problem", bundle_problems)
        ck.check(not bad_headers, "auditor: entry bundles are application/octet-stream with "
                 f"Cache-Control {TILE_CACHE!r}", "", bad_headers)
        self.leaves = leaves
        self.hashes = [leaf_hash(x) for x in leaves]

        # Section 4 form, index sequence, logged_at order, entry size.
        form, order, size_problems = [], [], []
        parsed = []
        last = ""
        for i, leaf in enumerate(leaves):
            if len(leaf) > 65535:
                size_problems.append(i)
            try:
                index, logged_at, note = parse_entry(leaf)
            except ValueError as e:
                form.append(f"entry {i}: {e}: {short(leaf[:120])}")
                parsed.append(None)
                continue
            parsed.append((index, logged_at, note))
            if index != i:
                order.append(f"entry {i} has index {index}")
            if logged_at < last:
                order.append(f"entry {i} logged_at {logged_at} before {last}")
            last = logged_at
        ck.check(not form, "auditor: every leaf is exactly the section-4 bytes "
                 '({"index":…,"logged_at":…,"statement":…}, only ", \\ and newline escaped)',
                 "no problem", form[:5])
        ck.check(not order, "auditor: indexes run 0, 1, 2 … and logged_at never decreases",
                 "no problem", order[:5])
        ck.check(not size_problems, "auditor: every entry is at most 65,535 bytes", [],
                 size_problems)
        # The client's own statements are logged byte for byte where its receipts said.
        mism = [i for i, note in c.by_index.items()
                if i >= len(parsed) or parsed[i] is None or parsed[i][2] != note.bytes
                or (note.logged_at and parsed[i][1] != note.logged_at)]
        ck.check(not mism, f"auditor: each of the client's {len(c.by_index)} accepted statements "
                 "is logged byte for byte at its receipt's index and logged_at", [], mism[:10])

        # Root and tiles.
        ck.equal(b64(tree_root(self.hashes)), b64(cp.root),
                 "auditor: the root recomputed from the entries is the checkpoint's root")
        tile_problems, bad_headers = [], []
        served = {}
        for level, idx, width in tiles_for_size(n):
            path = tile_path(level, idx, width)
            r = self.get("/" + path)
            served[(level, idx, width)] = r.body if r.status == 200 else None
            if r.status != 200:
                tile_problems.append(f"{path}: {r.status}")
            elif r.body != tile_bytes(self.hashes, level, idx, width):
                tile_problems.append(f"{path}: bytes differ")
            if (r.header("content-type") != "application/octet-stream"
                    or r.header("cache-control") != TILE_CACHE):
                bad_headers.append(f"{path}: {r.header('content-type')} / "
                                   f"{r.header('cache-control')}")
        ck.check(not tile_problems, f"auditor: every hash tile of the tree (full and partial: "
                 f"{', '.join(tile_path(*t) for t in tiles_for_size(n))}) is served and equals "
                 "the tile recomputed from the entries", "no problem", tile_problems)
        ck.check(not bad_headers, "auditor: hash tiles are application/octet-stream with "
                 f"Cache-Control {TILE_CACHE!r}", "", bad_headers)
        # The root recomputed from the served tiles alone.
        level0 = b"".join(served.get(t) or b"" for t in tiles_for_size(n) if t[0] == 0)
        tile_leaves = [level0[i:i + 32] for i in range(0, len(level0), 32)]
        ok = len(tile_leaves) == n and tree_root(tile_leaves) == cp.root
        ck.check(ok, "auditor: the root recomputed from the served level-0 tiles is the "
                 "checkpoint's root")
        forks = [s for s, root in sorted(c.signed_roots.items())
                 if s > n or tree_root(self.hashes[:s]) != root]
        ck.check(not forks, f"auditor: every one of the {len(c.signed_roots)} signed checkpoints "
                 "seen during the run (receipts, /checkpoint, stats) is the root of a prefix of "
                 "the final log (one root per size, no fork)", "no fork", forks[:10])
        self.older_partial_tiles(n)
        self.tile_errors(n)

        # Replay the whole log with the auditor's own rules.
        model = LogModel(c.origin)
        for i, p in enumerate(parsed):
            if p is not None:
                model.replay(i, p[1], p[2], c.log_key)
        ck.check(not model.problems, "auditor: replay: every statement is valid under the keys "
                 "in force, chains on its publisher's head, names what it may name",
                 "no problem", model.problems[:10])
        self.model = model
        self.last_date = parsed[-1][1][:10] if parsed and parsed[-1] else None
        return model

    # Tiles of older signed trees, and tiles that do not exist.

    def older_partial_tiles(self, n):
        c, ck = self.c, self.ck
        sizes = sorted(s for s in c.signed_roots if s < n)
        sample = sizes[:: max(1, len(sizes) // 12)] + sizes[-2:]
        problems, checked = [], 0
        for s in sorted(set(sample)):
            if tree_root(self.hashes[:s]) != c.signed_roots[s]:
                problems.append(f"signed root of size {s} is not the root of the first {s} "
                                "entries")
            for level, idx, width in tiles_for_size(s) + bundles_for_size(s):
                if width == TILE_WIDTH:
                    continue
                path = tile_path(level, idx, width)
                r = self.get("/" + path)
                checked += 1
                want = (bundle_bytes(self.leaves[idx * 256: idx * 256 + width]) if level == -1
                        else tile_bytes(self.hashes[:s], level, idx, width))
                if r.status != 200 or r.body != want:
                    problems.append(f"{path} (tree size {s}): {r.status}"
                                    f"{'' if r.status != 200 else ', bytes differ'}")
        ck.check(not problems, f"auditor: the partial tiles and bundles of {len(set(sample))} "
                 f"earlier signed tree sizes are still served, with the right bytes "
                 f"({checked} fetched; 6.1: every tile that is part of a signed tree is served)",
                 "no problem", problems[:8])

    def tile_errors(self, n):
        ck = self.ck
        last0 = n // 256
        width0 = n % 256
        beyond = [f"tile/0/{tile_index_path(last0 + 1)}",
                  f"tile/entries/{tile_index_path(last0 + 1)}",
                  "tile/1/001", "tile/2/000.p/1", "tile/3/000"]
        if width0:
            beyond.append(f"tile/0/{tile_index_path(last0)}")          # its full version
            beyond.append(f"tile/entries/{tile_index_path(last0)}")
            if width0 < 255:
                beyond.append(f"tile/0/{tile_index_path(last0)}.p/{width0 + 1}")
                beyond.append(f"tile/entries/{tile_index_path(last0)}.p/{width0 + 1}")
        for path in beyond:
            r = self.get("/" + path)
            ck.equal(r.status, 404, f"auditor: {path} is beyond the tree: 404")
            if r.status == 404:
                ck.equal(media_type(r.header("content-type")), PROBLEM_TYPE,
                         f"auditor: 404 for {path} is problem+json")
        malformed = ["tile/0/1", "tile/0/0000", "tile/0/000.p/0", "tile/0/000.p/256",
                     "tile/0/000.p/01", "tile/x/000", "tile/entries/00a", "tile/0/001/002",
                     "tile/00/000", "tile/0/000.p/", "tile/0/x1/000", "tile/-1/000",
                     "tile/entries/000.p/0"]
        for path in malformed:
            r = self.get("/" + path)
            ck.equal(r.status, 400, f"auditor: malformed tile path {path}: 400")
            if r.status == 400:
                ck.equal(media_type(r.header("content-type")), PROBLEM_TYPE,
                         f"auditor: 400 for {path} is problem+json")

    # --- the JSON API, against the entries -----------------------------------------------

    def entry_json(self, i):
        """What /api/v1/entries/{i} must answer, from the leaf."""
        index, logged_at, note = parse_entry(self.leaves[i])
        return {"index": index, "logged_at": logged_at, "leaf_hash": b64(self.hashes[i]),
                "statement": note.decode("utf-8"),
                "body": strict_json(note_text(note).decode("utf-8"))}

    def json_api(self):
        ck, n = self.ck, self.cp.size
        # Paging through every entry.
        got, start, pages, problems = [], 0, 0, []
        while start is not None and pages < 100:
            r = self.get(f"/api/v1/entries?start={start}&limit=97")
            pages += 1
            page = r.json() if r.status == 200 else None
            if not isinstance(page, dict) or not isinstance(page.get("entries"), list):
                problems.append(f"start={start}: {r.status} {short(r.body, 200)}")
                break
            got.extend(page["entries"])
            nxt = page.get("next")
            if nxt is not None and nxt != start + len(page["entries"]):
                problems.append(f"start={start}: next {nxt} is not start + {len(page['entries'])}")
            start = nxt
        want = [self.entry_json(i) for i in range(n)]
        ck.check(not problems and got == want,
                 "auditor: /api/v1/entries paging (limit 97) returns every entry, as the leaves "
                 "say, with next = following start and null at the end", "no problem",
                 problems or [i for i, (a, b) in enumerate(zip(got, want)) if a != b][:5]
                 or f"{len(got)} entries for {n}")
        r = self.get(f"/api/v1/entries?start={n - 3}&limit=10")
        page = r.json() or {}
        ck.check(r.status == 200 and page.get("next") is None and len(page.get("entries", [])) == 3,
                 "auditor: the last page is cut at the tree size and has next null",
                 "3 entries, next null", short(r.body, 200))
        r = self.get("/api/v1/entries?start=0&limit=1000")
        ck.check(r.status == 200 and len((r.json() or {}).get("entries", [])) == min(n, 1000),
                 "auditor: /api/v1/entries limit=1000 is allowed", 200, r.status)
        r = self.get("/api/v1/entries?start=0&limit=1")
        ck.check(r.status == 200 and len((r.json() or {}).get("entries", [])) == 1,
                 "auditor: /api/v1/entries limit=1 is allowed", 200, r.status)
        for q in ("limit=0", "limit=1001", "limit=-1", "limit=abc", "start=-1&limit=5",
                  "start=x&limit=5"):
            r = self.get(f"/api/v1/entries?{q}")
            self.expect_problem(r, 400, f"/api/v1/entries?{q}")
        # Single entries.
        sample = sorted(set([0, 1, n // 2, n - 1] + list(range(0, n, 37))))
        bad = []
        for i in sample:
            r = self.get(f"/api/v1/entries/{i}")
            if r.status != 200 or r.json() != want[i] or \
                    media_type(r.header("content-type")) != "application/json":
                bad.append(f"{i}: {r.status} {short(r.body, 150)}")
        ck.check(not bad, f"auditor: /api/v1/entries/{{index}} for {len(sample)} indexes equals "
                 "the leaf (index, logged_at, leaf_hash, statement, body), application/json",
                 "no difference", bad[:4])
        self.expect_problem(self.get(f"/api/v1/entries/{n}"), 404, f"/api/v1/entries/{n} "
                            "(at the tree size)")
        # Proofs.
        self.proofs(n)

    def expect_problem(self, r, status, what):
        ok = (r.status == status and media_type(r.header("content-type")) == PROBLEM_TYPE)
        body = r.json() if ok else None
        ok = ok and isinstance(body, dict) and body.get("status") == status and all(
            isinstance(body.get(f), str) and body.get(f) for f in ("type", "title", "detail"))
        self.ck.check(ok, f"auditor: {what}: {status} problem+json",
                      f"{status} problem+json", f"{r.status} {r.header('content-type')} "
                      f"{short(r.body, 200)}")

    def proofs(self, n):
        c, ck = self.c, self.ck
        sizes = sorted(s for s in c.signed_roots if s <= n)
        pairs = [(0, 1), (0, n), (n - 1, n), (n // 2, n), (255, 256), (256, 257)]
        for s in sizes[:: max(1, len(sizes) // 8)]:
            pairs.append((s - 1, s))
            pairs.append((s // 3, s))
        bad = []
        for index, size in sorted(set(p for p in pairs if p[0] < p[1] <= n)):
            r = self.get(f"/api/v1/proof/inclusion?index={index}&size={size}")
            body = r.json() or {}
            try:
                proof = [b64decode_canonical(h) for h in body.get("hashes", None)]
            except (ValueError, TypeError):
                proof = None
            root = tree_root(self.hashes[:size])
            if (r.status != 200 or media_type(r.header("content-type")) != "application/json"
                    or body.get("index") != index or body.get("size") != size
                    or proof is None
                    or not verify_inclusion(index, size, self.hashes[index], proof, root)
                    or proof != inclusion_proof(index, self.hashes[:size])):
                bad.append(f"index={index} size={size}: {r.status} {short(r.body, 150)}")
        ck.check(not bad, f"auditor: inclusion proofs from /api/v1/proof/inclusion verify "
                 f"(and equal RFC 6962 PATH) for {len(set(pairs))} (index, size) pairs",
                 "no problem", bad[:4])
        r = self.get("/api/v1/proof/inclusion?index=3")
        body = r.json() or {}
        ck.check(r.status == 200 and body.get("size") == n,
                 "auditor: /api/v1/proof/inclusion without size uses the current size",
                 n, f"{r.status} {short(r.body, 200)}")
        cpairs = [(1, n), (n, n), (1, 1), (256, n), (255, 257)]
        for a in sizes[:: max(1, len(sizes) // 6)]:
            for b in sizes[:: max(1, len(sizes) // 4)] + [n]:
                if a <= b:
                    cpairs.append((a, b))
        bad = []
        for a, b in sorted(set(p for p in cpairs if 1 <= p[0] <= p[1] <= n)):
            r = self.get(f"/api/v1/proof/consistency?from={a}&to={b}")
            body = r.json() or {}
            try:
                proof = [b64decode_canonical(h) for h in body.get("hashes", None)]
            except (ValueError, TypeError):
                proof = None
            ra = c.signed_roots.get(a) or tree_root(self.hashes[:a])
            rb = c.signed_roots.get(b) or tree_root(self.hashes[:b])
            if (r.status != 200 or media_type(r.header("content-type")) != "application/json"
                    or body.get("from") != a or body.get("to") != b or proof is None
                    or not verify_consistency(a, b, ra, rb, proof)
                    or proof != consistency_proof(a, self.hashes[:b])):
                bad.append(f"from={a} to={b}: {r.status} {short(r.body, 150)}")
        ck.check(not bad, f"auditor: consistency proofs from /api/v1/proof/consistency verify "
                 f"between signed roots (and equal RFC 6962 PROOF) for {len(set(cpairs))} pairs, "
                 "from = to giving []", "no problem", bad[:4])
        for q in (f"index={n}&size={n}", f"index=0&size={n + 1}", "index=0&size=0", "size=5",
                  "index=-1&size=5", "index=x&size=5", "index=5&size=4"):
            self.expect_problem(self.get(f"/api/v1/proof/inclusion?{q}"), 400,
                                f"/api/v1/proof/inclusion?{q}")
        for q in ("from=0&to=5", "from=5&to=4", f"from=1&to={n + 1}", "to=5", "from=-1&to=5",
                  "from=a&to=5"):
            self.expect_problem(self.get(f"/api/v1/proof/consistency?{q}"), 400,
                                f"/api/v1/proof/consistency?{q}")

    # --- publishers and statements ---------------------------------------------------------

    def publishers(self, model):
        c, ck = self.c, self.ck
        r = self.get("/api/v1/publishers")
        listed = {p.get("id"): p for p in (r.json() or {}).get("publishers", [])}
        ck.equal(sorted(listed), sorted(model.publishers),
                 "auditor: /api/v1/publishers lists every registered publisher, not the operator")
        parties = list(model.publishers.values()) + [model.operator]
        for p in parties:
            if p is model.operator:
                r = self.get("/api/v1/operator")
                label = "the operator (/api/v1/operator)"
            else:
                r = self.get(f"/api/v1/publishers/{urllib.parse.quote(p.id, safe='')}")
                label = p.id
            got = r.json() if r.status == 200 else None
            if not isinstance(got, dict):
                ck.check(False, f"auditor: publisher {label}", 200, f"{r.status} {short(r.body)}")
                continue
            diffs = []
            if p is not model.operator:
                for f, v in (("name", p.name), ("url", p.url), ("registered_at", p.registered_at)):
                    if got.get(f) != v:
                        diffs.append(f"{f}: {got.get(f)!r} not {v!r}")
            if got.get("status") != p.status:
                diffs.append(f"status: {got.get('status')!r} not {p.status!r}")
            if got.get("head") != {"seq": p.seq, "hash": p.head}:
                diffs.append(f"head: {got.get('head')} not {{seq {p.seq}, hash {p.head}}}")
            order = lambda ks: sorted(ks, key=lambda k: (k.get("from", 0), k.get("role", ""),
                                                         k.get("vkey", "")))
            if order(got.get("keys") or []) != order(p.keys):
                diffs.append(f"keys: {got.get('keys')} not {p.keys}")
            froms = [k.get("from") for k in got.get("keys") or []]
            if froms != sorted(froms):
                diffs.append("keys not in the order they were set")
            ck.check(not diffs, f"auditor: {label}: name, url, status, keys (from = index after "
                     "the entry that set it, until = index after the one that replaced it), "
                     "head, as replayed from the log", "no difference", "; ".join(diffs))
            # The client's own view of the head (the `prev` it must use next) agrees.
            mine = c.operator if p is model.operator else c.parties.get(p.id)
            if mine is not None:
                ck.equal((got.get("head") or {}).get("hash"), mine.head,
                         f"auditor: {label}: head.hash is the prev the client's next statement "
                         "needs")
        self.expect_problem(self.get("/api/v1/publishers/nobody.example"), 404,
                            "/api/v1/publishers/nobody.example")

    def statements(self, model, scenario):
        ck = self.ck
        s = scenario
        picks = [("request (updated once)", s.A, s.requests["request user_data"].id),
                 ("request (updated twice)", s.A, s.requests["request content_restriction"].id),
                 ("seal (extended, revealed, updated)", s.A, s.seals["s1"]["note"].id),
                 ("seal (overdue)", s.A,
                  s.seals["s2 (past disclose_by: overdue from the start)"]["note"].id),
                 ("seal (extended)", s.A, s.seals["s3"]["note"].id),
                 ("seal (open)", s.A, s.seals["s4"]["note"].id),
                 ("seal (overdue, extended)", s.A,
                  s.seals["s5 (overdue, then extended into the future)"]["note"].id),
                 ("aggregate (updated)", s.A, s.agg1.id),
                 ("band", s.A, s.band1.id),
                 ("rotate", s.A, next(n.id for n in s.A.notes if n.body["type"] == "rotate"))]
        last_date = self.last_date
        for label, party, sid in picks:
            r = self.get(f"/api/v1/publishers/{party.quoted_id}/statements/{sid}")
            got = r.json() if r.status == 200 else None
            index = model.publishers[party.id].ids.get(sid)
            if not isinstance(got, dict) or index is None:
                ck.check(False, f"auditor: statement view of a {label}", 200,
                         f"{r.status} {short(r.body)}")
                continue
            item = model.items.get((party.id, sid))
            want_current = None
            if item and item["type"] == "request":
                want_current = {"type": "request", "record": item["record"],
                                "updates": item["updates"]}
            elif item and item["type"] == "aggregate":
                want_current = {"type": "aggregate", "report": item["report"],
                                "updates": item["updates"]}
            elif item and item["type"] == "band":
                want_current = {"type": "band", "report": item["report"]}
            elif item and item["type"] == "seal":
                if item["revealed"]:
                    status = "revealed"
                elif last_date > item["disclose_by"]:
                    status = "overdue"
                elif item["extensions"]:
                    status = "extended"
                else:
                    status = "open"
                want_current = {"type": "seal", "status": status,
                                "commitment": item["seal"]["commitment"],
                                "disclose_by": item["disclose_by"], "basis": item["seal"]["basis"],
                                "kind": item["seal"].get("kind"),
                                "country": item["seal"].get("country"),
                                "extensions": item["extensions"], "revealed": item["revealed"],
                                "updates": item["updates"]}
            diffs = []
            if got.get("entry") != self.entry_json(index):
                diffs.append(f"entry {short(got.get('entry'), 200)}")
            cur = got.get("current")
            if want_current is None:
                if cur is not None:
                    diffs.append(f"current {cur!r} not null")
            elif not isinstance(cur, dict) or any(cur.get(k) != v for k, v in want_current.items()):
                diffs.append(f"current {short(cur, 300)} not {short(want_current, 300)}")
            ck.check(not diffs, f"auditor: /api/v1/publishers/{{id}}/statements/{{id}} of a "
                     f"{label}: the entry and its current state after updates, extensions and "
                     "reveal",
                     "no difference", "; ".join(diffs))
        self.expect_problem(self.get(f"/api/v1/publishers/{s.A.quoted_id}/statements/"
                                     f"{uuid.uuid4()}"), 404, "an unknown statement id")


# ---------------------------------------------------------------------------------------------
# Statistics (section 6.3), recomputed from the downloaded entries
# ---------------------------------------------------------------------------------------------

DIMENSIONS = ["publisher", "country", "kind", "channel", "process", "authority", "disposition",
              "reason", "user_notified", "period"]
MEASURES = ["requests", "produced", "accounts", "identifiers", "items", "urls"]
PRODUCED_DISPOSITIONS = {"complied", "partially_complied", "actioned_under_terms"}


def period_key(date, interval):
    y, m = int(date[:4]), int(date[5:7])
    if interval == "month":
        return f"{y}-{m:02d}"
    if interval == "quarter":
        return f"{y}-Q{(m - 1) // 3 + 1}"
    if interval == "half":
        return f"{y}-H{1 if m <= 6 else 2}"
    return f"{y}"


def period_interval(key):
    if re.fullmatch(r"[0-9]{4}", key):
        return "year"
    if re.fullmatch(r"[0-9]{4}-H[12]", key):
        return "half"
    if re.fullmatch(r"[0-9]{4}-Q[1-4]", key):
        return "quarter"
    return "month"


def period_bounds(key):
    """First and last date of a period key, as ISO strings."""
    y = int(key[:4])
    kind = period_interval(key)
    if kind == "year":
        first, last = 1, 12
    elif kind == "half":
        first = 1 if key.endswith("H1") else 7
        last = first + 5
    elif kind == "quarter":
        first = (int(key[-1]) - 1) * 3 + 1
        last = first + 2
    else:
        first = last = int(key[5:7])
    end = (datetime.date(y + (last == 12), last % 12 + 1, 1) - datetime.timedelta(days=1))
    return f"{y}-{first:02d}-01", end.isoformat()


def zero():
    return {m: 0 for m in MEASURES}


def add_demand(acc, record):
    acc["requests"] += 1
    acc["produced"] += 1 if record.get("disposition") in PRODUCED_DISPOSITIONS else 0
    for t in ("accounts", "identifiers", "items", "urls"):
        acc[t] += (record.get("targets") or {}).get(t, 0)


def demand_values(publisher, record, dim, interval):
    if dim == "publisher":
        return [publisher]
    if dim == "authority":
        return [(record.get("authority") or {}).get("type")]
    if dim == "period":
        return [period_key(record["received_on"], interval)]
    if dim == "reason":
        return list(record.get("reasons") or [None])
    return [record.get(dim)]


def expected_stats(model, params, last_date, restrict_filtered=True):
    """The stats of section 6.3 for `params`, by this client's reading of the text.
    Returns (rows as {tuple: measures}, totals, aggregates, bands, sealed variants).
    `restrict_filtered`: when grouping by a filtered multi-valued dimension (`reason`), keep
    only the filtered value in the rows (else a matching demand shows all its reasons)."""
    group_by = [d for d in params.get("group_by", "").split(",") if d]
    interval = params.get("interval", "half")
    frm, to = params.get("from"), params.get("to")
    filters = {k: v for k, v in params.items() if k in DIMENSIONS}

    rows, totals = {}, zero()
    lo = period_bounds(frm)[0] if frm else None
    hi = period_bounds(to)[1] if to else None
    for publisher, record in model.demand_records():
        received = record["received_on"]
        if (lo and received < lo) or (hi and received > hi):
            continue
        values = {d: demand_values(publisher, record, d, interval) for d in DIMENSIONS}
        if any(v not in values[k] for k, v in filters.items()):
            continue
        add_demand(totals, record)
        combos = [()]
        for d in group_by:
            vals = [filters[d]] if d in filters and restrict_filtered else values[d]
            combos = [c + (v,) for c in combos for v in dict.fromkeys(vals)]
        for combo in combos:
            add_demand(rows.setdefault(combo, zero()), record)

    def in_range(key):
        if not frm and not to:
            return True
        want = period_interval(frm or to)
        if period_interval(key) != want:
            return False
        return (not frm or key >= frm) and (not to or key <= to)

    aggregates = {}
    for pid, sid in model.aggregates:
        rep = model.items[(pid, sid)]["report"]
        carried = {"publisher": pid, "country": rep.get("country"), "kind": rep.get("kind"),
                   "period": rep.get("period")}
        if any(k not in carried or carried[k] != v for k, v in filters.items()):
            continue
        if not in_range(rep["period"]):
            continue
        key = tuple(carried.get(d) for d in group_by)
        acc = aggregates.setdefault(key, zero())
        acc["requests"] += rep.get("requests", 0)
        acc["produced"] += rep.get("produced", 0)
        for t in ("accounts", "identifiers", "items", "urls"):
            acc[t] += (rep.get("targets") or {}).get(t, 0)

    bands = []
    for pid, sid in model.bands:
        rep = model.items[(pid, sid)]["report"]
        carried = {"publisher": pid, "period": rep.get("period")}
        if any(k not in carried or carried[k] != v for k, v in filters.items()):
            continue
        if not in_range(rep["period"]):
            continue
        bands.append({"publisher": pid, "period": rep["period"], "category": rep["category"],
                      "requests": rep["requests"], "accounts": rep["accounts"]})

    # Sealed: seals carry publisher, and kind / country where they name them; no period. With
    # a from/to range the text does not say whether seals are kept: both readings are built.
    def sealed_for(keep_without_period):
        out = {}
        if (frm or to) and not keep_without_period:
            return out
        for pid, sid in model.seals:
            item = model.items[(pid, sid)]
            if item["revealed"]:
                continue
            carried = {"publisher": pid}
            for f in ("kind", "country"):
                if f in item["seal"]:
                    carried[f] = item["seal"][f]
            if any(k not in carried or carried[k] != v for k, v in filters.items()):
                continue
            acc = out.setdefault((pid, item["seal"]["basis"]), {"open": 0, "overdue": 0})
            acc["open"] += 1
            if last_date > item["disclose_by"]:
                acc["overdue"] += 1
        return out

    return rows, totals, aggregates, bands, (sealed_for(True), sealed_for(False))


def sort_key(values, nulls_first):
    return tuple((0 if nulls_first else 2, "") if v is None else (1, v) for v in values)


class StatsCheck:
    def __init__(self, auditor, model):
        self.a = auditor
        self.ck = auditor.ck
        self.model = model
        self.last_date = auditor.last_date
        self.null_orders = set()
        self.not_crlf = []
        self.csv_count = 0

    def queries(self):
        y = self.a.c.today.year
        return [
            {},
            {"group_by": "country,kind"},
            {"group_by": "reason"},
            {"group_by": "period", "interval": "quarter"},
            {"group_by": "period", "interval": "month", "from": f"{y - 1}-06", "to": f"{y}-03"},
            {"group_by": "publisher,period", "interval": "year"},
            {"group_by": "kind", "country": "DE"},
            {"group_by": "authority,disposition", "publisher": "bulk.example"},
            {"group_by": "reason", "reason": "privacy"},
            {"group_by": "country", "reason": "copyright"},
            {"group_by": "period,kind", "from": f"{y}-H1", "to": f"{y}-H2"},
            {"group_by": "process,channel,user_notified", "from": f"{y - 1}-H2",
             "to": f"{y}-H1", "kind": "user_data"},
            {"group_by": "channel", "channel": "emergency"},
            {"group_by": "publisher", "kind": "user_data"},
            {"group_by": "country", "period": f"{y}-H1"},
            {"group_by": "country,publisher", "publisher": "acme.example"},
            {"group_by": "kind", "interval": "quarter", "from": f"{y}-Q1", "to": f"{y}-Q3"},
            {"group_by": "period", "interval": "quarter", "from": f"{y}-Q1"},
            {"group_by": "disposition", "country": "US", "kind": "content_restriction"},
            {"group_by": "period", "from": f"{y}", "to": f"{y}", "interval": "year"},
            {"group_by": "period", "interval": "quarter", "from": f"{y - 1}", "to": f"{y - 1}"},
            {"group_by": "kind", "interval": "month", "from": f"{y - 1}-H2", "to": f"{y}-H1"},
        ]

    def run(self):
        for params in self.queries():
            self.one(params)
        self.ck.check(len(self.null_orders) <= 1, "stats: null keys sort the same way in every "
                      "query", "one order", self.null_orders)
        for order in self.null_orders:
            self.ck.reading("where rows with a null key sort", order)
        self.ck.check(not self.not_crlf, f"stats.csv: every line ends with CRLF (RFC 4180 2.1), "
                      f"in all {self.csv_count} responses", "CRLF line breaks",
                      f"LF only in {len(self.not_crlf)} responses")
        for q in ("group_by=country,kind,channel,process", "group_by=colour",
                  "interval=week", "from=2026-13", "to=2026-H3", "group_by=country&interval=day"):
            self.a.expect_problem(self.a.get(f"/api/v1/stats?{q}"), 400, f"/api/v1/stats?{q}")

    def one(self, params):
        ck = self.ck
        qs = urllib.parse.urlencode(params)
        label = f"stats ?{qs}" if qs else "stats (no parameters)"
        r = self.a.get(f"/api/v1/stats?{qs}")
        got = r.json() if r.status == 200 else None
        if not ck.check(isinstance(got, dict)
                        and media_type(r.header("content-type")) == "application/json",
                        f"{label}: 200 application/json", "200 application/json",
                        f"{r.status} {r.header('content-type')} {short(r.body, 200)}"):
            return
        group_by = [d for d in params.get("group_by", "").split(",") if d]
        diffs = []
        try:
            cp = parse_checkpoint(got.get("checkpoint", ""), self.a.c.log_key)
            if cp.size != got.get("size") or cp.size != self.a.cp.size or cp.root != self.a.cp.root:
                diffs.append(f"size {got.get('size')} / checkpoint {cp.size} not the audited tree")
        except ValueError as e:
            diffs.append(f"checkpoint: {e}")
        if got.get("group_by") != group_by:
            diffs.append(f"group_by {got.get('group_by')}")
        if got.get("interval") != params.get("interval", "half"):
            diffs.append(f"interval {got.get('interval')}")
        ck.check(not diffs, f"{label}: size and checkpoint name the audited tree; group_by and "
                 "interval echoed", "no difference", "; ".join(diffs))
        rows, totals, aggs, bands, sealed_variants = expected_stats(self.model, params,
                                                                    self.last_date)
        # rows
        got_rows = got.get("rows") or []
        got_map, shape = {}, []
        for row in got_rows:
            key = row.get("key") or {}
            if sorted(key) != sorted(group_by):
                shape.append(f"key {key}")
            got_map[tuple(key.get(d) for d in group_by)] = {m: row.get(m) for m in MEASURES}
        want_map = dict(rows)
        if not group_by:
            # With no dimension the text does not say whether `rows` holds one row with an
            # empty key (the totals) or none: both readings are accepted.
            if not got_rows:
                want_map = {}
            self.ck.reading("rows with no group_by",
                            "none" if not got_rows else "one row with an empty key")
        if "reason" in group_by and "reason" in params:
            # Grouping by `reason` while filtering on one reason: the text does not say
            # whether rows keep only the filtered reason (this client's reading) or every
            # reason of the matching demands. Both are accepted; the server's is recorded.
            other = dict(expected_stats(self.model, params, self.last_date, False)[0])
            if got_map == other and got_map != want_map:
                want_map = other
                self.ck.reading("rows grouped by reason under a reason= filter",
                                "every reason of the matching demands")
            elif got_map == want_map:
                self.ck.reading("rows grouped by reason under a reason= filter",
                                "only the filtered reason")
        ck.check(not shape and got_map == want_map and len(got_map) == len(got_rows),
                 f"{label}: rows ({len(want_map)}) as recomputed from the entries",
                 short(sorted(want_map.items(), key=lambda kv: sort_key(kv[0], True)), 600),
                 short(shape or sorted(got_map.items(), key=lambda kv: sort_key(kv[0], True)),
                       600))
        keys = [tuple((row.get("key") or {}).get(d) for d in group_by) for row in got_rows]
        orders = [o for o in (True, False) if keys == sorted(keys, key=lambda k: sort_key(k, o))]
        if any(None in k for k in keys) and len(orders) == 1:
            self.null_orders.add("nulls first" if orders[0] else "nulls last")
        ck.check(bool(orders), f"{label}: rows sorted by key", "sorted", keys[:8])
        ck.equal(got.get("totals"), totals, f"{label}: totals (each demand once)")
        # aggregates
        got_aggs = {}
        for row in got.get("aggregates") or []:
            key = row.get("key") or {}
            got_aggs[tuple(key.get(d) for d in group_by)] = {m: row.get(m) for m in MEASURES}
        ck.check(got_aggs == aggs and len(got_aggs) == len(got.get("aggregates") or []),
                 f"{label}: aggregates (merged, grouped by the dimensions they carry, "
                 "never in totals)", short(aggs), short(got_aggs))
        # bands
        canon = lambda xs: sorted(jdump(x) for x in xs)
        ck.equal(canon(got.get("bands") or []), canon(bands), f"{label}: bands")
        # sealed
        got_sealed = {}
        for row in got.get("sealed") or []:
            if row.get("open") == 0 and row.get("overdue") == 0:
                continue        # a zero row says nothing; the text neither needs nor forbids it
            got_sealed[(row.get("publisher"), row.get("basis"))] = {
                "open": row.get("open"), "overdue": row.get("overdue")}
        variants = [i for i, v in enumerate(sealed_variants) if v == got_sealed]
        if ("from" in params or "to" in params) and len(variants) == 1:
            self.ck.reading("sealed under a from/to range",
                            "seals kept (they carry no period)" if variants[0] == 0
                            else "seals left out (they carry no period)")
        ck.check(bool(variants), f"{label}: sealed (open, overdue at size, per publisher and "
                 "basis)", short(sealed_variants[0]), short(got_sealed))
        self.csv(params, group_by, got_rows, label)

    def csv(self, params, group_by, rows, label):
        ck = self.ck
        qs = urllib.parse.urlencode(params)
        r = self.a.get(f"/api/v1/stats.csv?{qs}")
        if not ck.check(r.status == 200, f"{label}: stats.csv answers 200", 200, r.status):
            return
        ck.equal(media_type(r.header("content-type")), "text/csv",
                 f"{label}: stats.csv content type")
        text = r.body.decode("utf-8", "replace")
        if not (text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")):
            self.not_crlf.append(label)
        self.csv_count += 1
        parsed = list(csv.reader(io.StringIO(text.replace("\r\n", "\n"))))
        header = group_by + MEASURES
        want = [header] + [[("" if (row.get("key") or {}).get(d) is None
                             else str(row["key"][d])) for d in group_by]
                           + [str(row.get(m)) for m in MEASURES] for row in rows]
        ck.equal(parsed, want, f"{label}: stats.csv has the header, then one line per row of "
                 "rows, a missing value as an empty field")



# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def operator_rotation(scenario):
    """A revocation that stays, then the operator rotates its key like a publisher; the old key
    then stops working."""
    c = scenario.c
    c.submit(c.operator.note("revoke", {"subject": scenario.D.id, "reason": "left"}),
             "revoke umbrella.example (stays revoked)")
    old, note = scenario.rotate(c.operator, "the operator rotates its key")
    late = scenario.party("late.example")
    scenario.register(late, "Late Publisher", label="register with the operator's new key")
    stale = scenario.party("stale.example")
    c.refuse(c.operator.note("register", {"subject": stale.id, "name": "S",
                                          "key": stale.signing.vkey.text,
                                          "recovery_key": stale.recovery.vkey.text},
                             signers=[old, stale.signing]),
             "403 a register signed by the operator's rotated-away key", 403)


def misc_http(client):
    ck, h = client.ck, client.http
    r = h.get("/healthz")
    ck.equal(r.status, 200, "GET /healthz answers 200")
    r = h.get("/readyz")
    ck.equal(r.status, 200, "GET /readyz answers 200")
    r = h.get("/metrics")
    ck.check(r.status == 200 and media_type(r.header("content-type")) == "text/plain",
             "GET /metrics answers 200 in the Prometheus text format", "200 text/plain",
             f"{r.status} {r.header('content-type')}")
    r = h.get("/api/v1/publishers")
    ck.equal(media_type(r.header("content-type")), "application/json",
             "JSON API answers are application/json")
    r = h.get("/api/v1/no-such-route")
    ck.check(r.status == 404 and media_type(r.header("content-type")) == PROBLEM_TYPE,
             "an unknown route under /api/v1 is a 404 problem", "404 problem+json",
             f"{r.status} {r.header('content-type')}")


def load_keys(keys_dir):
    def read(name):
        with open(os.path.join(keys_dir, name), encoding="utf-8") as f:
            return f.read().strip()
    try:
        log_key = parse_vkey(read("log.vkey"))
        operator = parse_skey(read("operator.key"))
        operator_vkey = parse_vkey(read("operator.vkey"))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the keys in {keys_dir}: {e}")
    if operator_vkey.text != operator.vkey.text:
        raise UsageError("operator.vkey does not match operator.key")
    return log_key, operator


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--keys", required=True, help="the server's keys directory")
    ap.add_argument("--vectors", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..", "tests", "vectors"),
                    help="Go reference vectors (notes.json, tree.json, tiles.json, "
                         "tile-paths.json); default: the repository's tests/vectors")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    started = time.monotonic()
    ck = Checker()
    try:
        log_key, operator = load_keys(args.keys)
        if not os.path.isdir(args.vectors):
            raise UsageError(f"no vectors directory {args.vectors}")
        print(f"# self-tests against {args.vectors}")
        self_test(ck, args.vectors)
        client = Client(ck, Http(args.url), log_key, operator)
        key_files = sorted(f for f in os.listdir(args.keys) if f.endswith(".key"))
        modes = {f: oct(os.stat(os.path.join(args.keys, f)).st_mode & 0o777) for f in key_files}
        ck.check(set(key_files) >= {"log.key", "operator.key"}
                 and all(m == "0o600" for m in modes.values()),
                 "key files: log.key and operator.key exist, every .key file is mode 0600 "
                 "(section 2)", "0o600", modes)
        ck.check(re.fullmatch(r"[a-z0-9.-]+(/[A-Za-z0-9._~-]+)*", log_key.name),
                 "the log key is named by an origin of the form of section 2", "an origin",
                 log_key.name)
        ck.equal(operator.name, log_key.name + "/operator",
                 "the operator key is named <origin>/operator")
        scenario = Scenario(client)
        print("# start")
        scenario.start()
        print("# publishers, requests, updates, seals, aggregates, bands")
        scenario.publishers()
        scenario.requests_and_updates()
        scenario.seals_flow()
        scenario.aggregates_and_bands()
        print("# keys: rotate, revoke, recover")
        scenario.keys_flow()
        print("# batches")
        scenario.batches()
        print("# refusals")
        Hostile(scenario).run()
        print("# bulk load")
        scenario.bulk()
        operator_rotation(scenario)
        print("# audit")
        auditor = Auditor(client)
        model = auditor.run()
        auditor.json_api()
        auditor.publishers(model)
        auditor.statements(model, scenario)
        print("# statistics")
        StatsCheck(auditor, model).run()
        misc_http(client)
    except UsageError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return 2
    except NetworkError as e:
        print(f"network error: {e}", file=sys.stderr)
        print(f"# {ck.passed} passed, {ck.failed} failed before the error")
        return 2
    except Exception:  # a server answer the client could not follow: a failure, not a crash
        import traceback
        traceback.print_exc()
        ck.check(False, "the client could go on with the server's answers",
                 "answers it can follow", "an exception (above)")
    elapsed = time.monotonic() - started
    print(f"# {ck.passed + ck.failed} checks: {ck.passed} passed, {ck.failed} failed "
          f"({elapsed:.1f} s)")
    for question, answers in sorted(ck.readings.items()):
        print(f"# where the text is ambiguous, the server's reading: {question}: "
              f"{', '.join(sorted(answers))}")
    if ck.failures:
        print("# failures:")
        for line in ck.failures:
            print(f"#   {line}")
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
