"""Specification of ``ledger.policy``: C2SP tlog-policy files (c2sp.org/tlog-policy), parsed strictly, and the
quorum of witnesses a checkpoint needs."""

from __future__ import annotations

import pytest

from keys import ALG_COSIGNATURE_V1, SigningKey, verifier_key
from ledger.errors import CheckpointError
from ledger.note import Checkpoint, cosign_note, sign_checkpoint
from ledger.policy import PolicyError, parse_policy

ORIGIN = "village.example/demo"
LOG = SigningKey.generate()
WITNESSES = {name: SigningKey.generate() for name in ("X1", "X2", "X3", "Y1", "Y2", "Y3")}


def wkey(name: str) -> str:
    return verifier_key(f"{name.lower()}.example/w", WITNESSES[name].public_bytes, ALG_COSIGNATURE_V1)


LOG_VKEY = verifier_key(ORIGIN, LOG.public_bytes)
# The spec's example, with keys.
EXAMPLE = f"""# the example of c2sp.org/tlog-policy
log {LOG_VKEY} https://village.example/api/v1/villages/demo/log/

witness X1 {wkey("X1")}
witness X2 {wkey("X2")}
witness X3 {wkey("X3")}
group X-witnesses 2 X1 X2 X3

witness Y1 {wkey("Y1")}
witness Y2 {wkey("Y2")}
\twitness Y3 {wkey("Y3")}   \t
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
""".encode()
CHECKPOINT = Checkpoint(ORIGIN, 10, bytes(range(32)))


def cosigned_by(*names: str) -> str:
    note = sign_checkpoint(CHECKPOINT, [(ORIGIN, LOG)])
    return note + "".join(cosign_note(CHECKPOINT.text(), f"{n.lower()}.example/w", WITNESSES[n], 1_765_000_000 + i)
                          for i, n in enumerate(names))


def test_the_specs_example_parses_as_it_reads() -> None:
    policy = parse_policy(EXAMPLE)
    assert [log.name for log in policy.logs] == [ORIGIN]
    assert list(policy.witnesses) == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert (policy.groups["X-witnesses"].threshold, policy.groups["Y-witnesses"].threshold) == (2, 1)
    assert policy.groups["X-and-Y"].threshold == 2 and policy.quorum == "X-and-Y"


@pytest.mark.parametrize(("names", "met"), [
    (("X1", "X2", "Y3"), True),
    (("X1", "X3", "Y1", "Y2"), True),
    (("X1", "Y1"), False),  # one X witness is not two
    (("X1", "X2", "X3"), False),  # no Y witness
    ((), False),
])
def test_the_quorum_is_two_of_the_x_witnesses_and_one_of_the_y(names: tuple[str, ...], met: bool) -> None:
    policy = parse_policy(EXAMPLE)
    if met:
        checkpoint, times = policy.open_checkpoint(cosigned_by(*names))
        assert checkpoint == CHECKPOINT and sorted(times) == sorted(f"{n.lower()}.example/w" for n in names)
    else:
        with pytest.raises(PolicyError, match="not the quorum 'X-and-Y'"):
            policy.open_checkpoint(cosigned_by(*names))


def test_a_policy_without_logs_takes_the_log_from_the_context() -> None:
    policy = parse_policy(f"witness T {wkey('X1')}\nquorum T\n".encode())
    with pytest.raises(CheckpointError, match="only cosigned"):
        policy.open_checkpoint(cosigned_by("X1"))
    from keys import parse_verifier_key
    assert policy.open_checkpoint(cosigned_by("X1"), [parse_verifier_key(LOG_VKEY)])[0].size == 10


def test_quorum_none_needs_no_witness() -> None:
    assert parse_policy(f"log {LOG_VKEY}\nquorum none\n".encode()).open_checkpoint(cosigned_by())[0].size == 10


@pytest.mark.parametrize(("text", "problem"), [
    ("log {log}\n", "no quorum line"),
    ("witness A {w}\nquorum A\nquorum A\n", "line 3: a second quorum line"),
    ("quorum B\n", "line 1: 'B' is not defined on a line before"),
    ("witness A {w}\nwitness A {w2}\nquorum A\n", "line 2: the name 'A' is already defined"),
    ("witness A {w}\nwitness B {w}\nquorum A\n", "line 2: the key of x1.example/w is listed twice"),
    ("witness A {w}\ngroup G 2 A\nquorum G\n", "threshold '2' is not all, any or 1..1"),
    ("witness A {w}\ngroup G 0 A\nquorum G\n", "threshold '0'"),
    ("witness A {w}\ngroup G any A A\nquorum G\n", "lists a member twice"),
    ("witness A {w}\ngroup G any none\nquorum G\n", "'none' is not a group member"),
    ("witness none {w}\nquorum none\n", "the name 'none' is already defined"),
    ("log {w}\nquorum none\n", "is a witness's key, not a log's"),
    ("witness A {log}\nquorum A\n", "is a log's key, not a witness's"),
    ("witness A {w}\r\nquorum A\n", "control character 0x0d"),
    ("wtiness A {w}\nquorum A\n", "'wtiness' with 2 arguments is not a log, witness, group or quorum line"),
    ("witness A\nquorum A\n", "'witness' with 1 arguments"),
    ("witness A not-a-key\nquorum A\n", "line 1: verifier key"),
])
def test_a_policy_that_breaks_a_rule_of_the_spec_is_refused_naming_the_line(text: str, problem: str) -> None:
    data = text.format(log=LOG_VKEY, w=wkey("X1"), w2=wkey("X2")).encode()
    with pytest.raises(PolicyError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_policy(data)


def test_comments_blank_lines_and_tabs_are_ignored_and_names_are_opaque_bytes() -> None:
    policy = parse_policy(f"  # 乡镇的见证\n\n\twitness 见证 {wkey('X1')}\t\nquorum 见证\n".encode())
    assert policy.quorum == "见证"
