#!/usr/bin/env python3
"""Retrieval over encrypted patient notes: redis-enc + RediSearch vector search.

Each document is a Redis hash under `doc:{<patient token>}:<n>`:

    embedding       plain   float32 vector, indexed by RediSearch (KNN)
    tenant          plain   TAG, indexed
    mrn             sealed  ENC.HSETFIELD (AES envelope, unreadable to RediSearch)
    patient_name    sealed
    note            sealed
    bi_mrn          written by ENC.HSETFIELD: blind-index token of the MRN, indexed as a TAG
    bi_patient_name written by ENC.HSETFIELD: blind-index token of the name, indexed as a TAG

A query asks the module for the tokens of an exact value (ENC.BLINDINDEX), filters the KNN
search with them, and opens the hits with ENC.HGETFIELD. The server, its RDB, AOF and replicas
hold only ciphertext and tokens for the sealed fields.

The server must load RediSearch and redis-enc with
    phi-patterns doc:*  phi-plain-fields embedding,tenant
    blind-indexes "doc:* mrn 24,doc:* patient_name 20"
(`make example` starts such a server: scripts/example.sh). All data here is synthetic.
Exits non-zero when anything is not as expected, so it doubles as a smoke test.
"""
import argparse
import hashlib
import math
import re
import struct
import sys

import redis

DIM = 32  # vector dimension; must match the FT.CREATE below
INDEX = "patients_idx"
TTL = 86400  # seconds; PHI should not live for ever
TOKEN = re.compile(rb"[a-z0-9_]+")
# ENC.BLINDINDEX takes a key name to pick the enc.blind-indexes rule (and for the ACL check):
# any name under doc:* will do; it need not exist.
KEY_LIKE = "doc:query"

# (patient id, MRN, name, tenant, notes). Synthetic. The notes hold no name or MRN: only the
# note text is embedded, and an embedding is not a ciphertext (see README.md).
PATIENTS = [
    ("P-10001", "MRN-004211", "Ada Quinn", "north", [
        "chest pain and shortness of breath on exertion, troponin negative",
        "follow up: stress test normal, continue aspirin",
        "seasonal allergies, cetirizine as needed"]),
    ("P-10002", "MRN-004298", "Bo Lindqvist", "north", [
        "penicillin allergy with rash, switch to azithromycin",
        "type 2 diabetes, metformin dose increased",
        "annual eye exam, no retinopathy"]),
    ("P-10003", "MRN-005120", "Chen Wei", "south", [
        "fractured left wrist after fall, cast applied",
        "cast removed, physiotherapy for wrist stiffness",
        "chest pain on exertion, referred to cardiology"]),
    ("P-10004", "MRN-005377", "Dana Okafor", "south", [
        "asthma exacerbation, inhaled steroids started",
        "asthma controlled, peak flow improved"]),
    ("P-10005", "MRN-006001", "Eli Moreau", "north", [
        "hypertension, lisinopril started",
        "blood pressure improved, renal function normal",
        "headache and dizziness, blood pressure high"]),
    ("P-10006", "MRN-006455", "Fay Haddad", "south", [
        "prenatal visit, week twelve, ultrasound normal",
        "gestational diabetes screening negative"]),
    ("P-10007", "MRN-007013", "Gus Tanaka", "north", [
        "lower back pain after lifting, ibuprofen and rest",
        "back pain resolved, core exercises advised"]),
    ("P-10008", "MRN-007789", "Hana Novak", "south", [
        "migraine with aura, sumatriptan prescribed",
        "shortness of breath at night, chest x-ray clear"]),
]

STOP = {"a", "an", "and", "at", "the", "of", "on", "to", "for", "with", "after", "no", "as"}


def embed(text: str) -> bytes:
    """Stand-in for a real embedding model (none is downloaded here): a hashed bag of words,
    DIM float32s, unit length. Replace with your model; keep the same DIM and dtype."""
    v = [0.0] * DIM
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in STOP:
            continue
        h = hashlib.blake2b(word.encode(), digest_size=8).digest()
        v[h[0] % DIM] += 1.0 if h[1] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return struct.pack(f"<{DIM}f", *(x / norm for x in v))


def normalise(text: str) -> str:
    """How the module compares indexed values: trimmed, single spaces, lower case."""
    return " ".join(text.split()).lower()


failures = []


def check(ok: bool, what: str) -> bool:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)
    return ok


def tokenize(r, namespace: str, value: str) -> str:
    """ENC.TOKENIZE: a deterministic token, safe in key names (no braces, spaces, glob chars)."""
    token = r.execute_command("ENC.TOKENIZE", namespace, value)
    if not TOKEN.fullmatch(token):
        raise SystemExit(f"ENC.TOKENIZE returned {token!r}, not [a-z0-9_]+")
    return token.decode()


def search(r, key_like: str, field: str, value: str, question: str, extra_filter: str = ""):
    """KNN search over the docs whose sealed `field` equals `value`, nearest to `question`.
    Returns [(key, distance, mrn, name, note)] of the hits whose opened field really matches."""
    # One token per keyring version still in use (newest first): after a key rotation, older
    # documents keep their old tokens until they are re-encrypted.
    tokens = r.execute_command("ENC.BLINDINDEX", key_like, field, value)
    if not isinstance(tokens, list):
        raise SystemExit(f"ENC.BLINDINDEX returned {tokens!r}, not an array of tokens")
    check(bool(tokens) and all(TOKEN.fullmatch(t) for t in tokens),
          f"ENC.BLINDINDEX {field} gave {len(tokens)} token(s) of [a-z0-9]")
    tag = "|".join(t.decode() for t in tokens)  # tokens need no escaping in a TAG query
    query = f"({extra_filter}@bi_{field}:{{{tag}}})=>[KNN 5 @embedding $vec]"
    print(f"  FT.SEARCH {INDEX} \"{query}\"")
    reply = r.execute_command("FT.SEARCH", INDEX, query, "PARAMS", 2, "vec", embed(question),
                              "RETURN", 1, "__embedding_score", "DIALECT", 2)
    hits, dropped = [], 0
    for key, attrs in zip(reply[1::2], reply[2::2]):
        distance = float(dict(zip(attrs[::2], attrs[1::2]))[b"__embedding_score"])
        mrn, name, note = ((x or b"").decode() for x in
                           r.execute_command("ENC.HGETFIELD", key, "mrn", "patient_name", "note"))
        # A blind index is truncated (24 bits here), so other values can share a token: always
        # compare the opened value and drop those false positives.
        if normalise(mrn if field == "mrn" else name) != normalise(value):
            dropped += 1
            continue
        hits.append((key.decode(), distance, mrn, name, note))
    hits.sort(key=lambda h: h[1])  # cosine distance: smaller is nearer
    for key, distance, mrn, name, note in hits:
        print(f"    {distance:.3f}  {key}  {mrn}  {name}: {note}")
    print(f"    ({len(hits)} hit(s), {dropped} false positive(s) dropped)")
    return hits, dropped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="redis://127.0.0.1:6399")
    args = ap.parse_args()
    # RESP2 keeps the FT.SEARCH reply a flat list, parsed by hand above.
    r = redis.Redis.from_url(args.url, protocol=2)
    r.ping()

    print("1. index")
    try:
        r.execute_command("FT.DROPINDEX", INDEX)  # keeps the documents; they are replaced below
    except redis.ResponseError:
        pass
    r.execute_command("FT.CREATE", INDEX, "ON", "HASH", "PREFIX", 1, "doc:", "SCHEMA",
                      "tenant", "TAG", "bi_mrn", "TAG", "bi_patient_name", "TAG",
                      "embedding", "VECTOR", "FLAT", 6, "TYPE", "FLOAT32", "DIM", DIM,
                      "DISTANCE_METRIC", "COSINE")
    print(f"  created {INDEX} over doc:*")

    print("2. documents")
    docs = {}  # key -> (patient id, mrn, name, note)
    for pid, mrn, name, tenant, notes in PATIENTS:
        # The token in braces is the hash tag: one patient's documents share a cluster slot,
        # and the key name does not reveal the patient id.
        ptok = tokenize(r, "patient", pid)
        for n, note in enumerate(notes, 1):
            key = f"doc:{{{ptok}}}:{n}"
            docs[key] = (pid, mrn, name, note)
            # MULTI/EXEC: the document appears whole. ENC.HSETFIELD comes first: it creates the
            # hash as PHI (with enc.phi-ttl-default when TTL bounds are set), then the plain
            # fields are added and EXPIRE gives the document its own TTL.
            with r.pipeline(transaction=True) as p:
                p.delete(key)
                p.execute_command("ENC.HSETFIELD", key, "mrn", mrn, "patient_name", name,
                                  "note", note)  # sealed; also writes bi_mrn, bi_patient_name
                p.hset(key, mapping={"embedding": embed(note), "tenant": tenant})  # plain
                p.expire(key, TTL)
                p.execute()
    print(f"  {len(docs)} documents for {len(PATIENTS)} patients")
    info = r.execute_command("FT.INFO", INDEX)
    indexed = int(dict(zip(info[::2], info[1::2]))[b"num_docs"])
    check(indexed >= len(docs), f"{INDEX} holds them ({indexed} documents)")

    print("3. what Redis stores")
    key, (pid, mrn, name, note) = next(iter(docs.items()))
    stored = r.hgetall(key)
    shown = (f"{f.decode()}={v[:12]!r}{'…' if len(v) > 12 else ''}"
             for f, v in sorted(stored.items()))
    print(f"  HGETALL {key}: " + ", ".join(shown))
    secrets = [s.encode() for s in (mrn, name, note)]
    check(b"mrn" in stored and not any(s in v for v in stored.values() for s in secrets),
          "no field holds the MRN, name or note in clear")
    check(TOKEN.fullmatch(stored.get(b"bi_mrn", b"")) is not None, "bi_mrn holds a token")
    check(r.ttl(key) > 0, f"the document expires (TTL {r.ttl(key)} s)")
    try:  # only enc.phi-plain-fields may be written in plain under a PHI key
        r.hset(key, "diagnosis", "asthma")
        check(False, "a plain HSET of another field under doc:* is refused")
    except redis.ResponseError as e:
        check(True, f"a plain HSET of another field under doc:* is refused ({str(e)[:50]}…)")
    ptok = key.split("{", 1)[1].split("}", 1)[0]
    back = r.execute_command("ENC.DETOKENIZE", ptok).decode()
    check(back == pid, f"ENC.DETOKENIZE {ptok} -> {back}")
    check(tokenize(r, "patient", pid) == ptok, "ENC.TOKENIZE is deterministic")
    plain = r.execute_command("FT.SEARCH", INDEX, "@bi_mrn:{%s}" % re.sub(r"(\W)", r"\\\1", mrn),
                              "DIALECT", 2)
    check(plain[0] == 0, f"FT.SEARCH for the plaintext MRN {mrn} finds nothing ({plain[0]} hits)")

    question = "chest pain and shortness of breath"
    print(f"4. search the notes of MRN-004211 for '{question}'")
    hits, fp1 = search(r, KEY_LIKE, "mrn", "MRN-004211", question)
    want = [k for k, d in docs.items() if d[1] == "MRN-004211"]
    check(sorted(h[0] for h in hits) == sorted(want), f"the {len(want)} documents of that MRN")
    check(bool(hits) and hits[0][4].startswith("chest pain and shortness"),
          "the nearest is the chest-pain note")

    question = "allergy to penicillin"
    print(f"5. search the notes of Bo Lindqvist in tenant north for '{question}'")
    hits2, fp2 = search(r, KEY_LIKE, "patient_name", "Bo Lindqvist", question,
                        extra_filter="@tenant:{north} ")
    want2 = [k for k, d in docs.items() if d[2] == "Bo Lindqvist"]
    check(sorted(h[0] for h in hits2) == sorted(want2), f"the {len(want2)} documents of that name")
    check(bool(hits2) and "penicillin" in hits2[0][4], "the nearest is the penicillin note")

    print("summary:")
    print(f"  {len(docs)} documents sealed and indexed; 2 filtered KNN searches returned "
          f"{len(hits) + len(hits2)} hits, {fp1 + fp2} false positive(s) dropped")
    if failures:
        print(f"  {len(failures)} check(s) FAILED: " + "; ".join(failures))
        return 1
    print("  all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except redis.RedisError as e:  # an unexpected refusal or a lost connection
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
