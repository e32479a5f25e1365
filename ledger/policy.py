"""C2SP tlog-policy (c2sp.org/tlog-policy): which logs and witnesses a verifier trusts, and the quorum of
cosignatures a checkpoint needs to be valid.

Invariants:
- a parsed ``Policy`` is exactly what the text says, or the text is refused naming the line: every name is
  defined before use and at most once a member of each group, no key appears twice, exactly one quorum;
- ``Policy.open_checkpoint`` accepts a checkpoint only if a listed log (or, for a policy with no logs, a log key
  the caller knows from its context) signed it and the quorum of listed witnesses cosigned it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from keys import NoteVerifier, parse_verifier_key

from .errors import EncodingError, LedgerError
from .note import Checkpoint, open_note, parse_checkpoint

NONE = "none"
_WHITESPACE = re.compile(r"[ \t]+")
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


class PolicyError(LedgerError):
    """A policy file that does not parse, or a checkpoint that does not satisfy a policy."""


@dataclass(frozen=True)
class Group:
    """At least ``threshold`` of ``members`` (witness or group names) have witnessed."""

    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    logs: tuple[NoteVerifier, ...]
    witnesses: Mapping[str, NoteVerifier]
    groups: Mapping[str, Group] = field(default_factory=dict)
    quorum: str = NONE

    def witnessed(self, name: str, cosigners: frozenset[str]) -> bool:
        """Whether witness or group ``name`` witnessed, given the key names of the valid cosignatures."""
        if name == NONE:
            return True
        if name in self.witnesses:
            return self.witnesses[name].name in cosigners
        group = self.groups[name]
        return sum(self.witnessed(member, cosigners) for member in group.members) >= group.threshold

    def quorum_met(self, cosigners: frozenset[str]) -> bool:
        """Whether the policy's witnesses whose key names are ``cosigners`` make its quorum."""
        return self.witnessed(self.quorum, cosigners)

    def open_checkpoint(self, note: str, log_keys: Sequence[NoteVerifier] = (), *,
                        require_quorum: bool = True) -> tuple[Checkpoint, dict[str, int]]:
        """The checkpoint in ``note`` and the time of each of the policy's witnesses' cosignatures on it, if a
        listed log (or one of ``log_keys``: a policy may leave the logs to the context) signed it and, unless
        not ``require_quorum``, the quorum cosigned it. Raises CheckpointError for a note that does not open
        (a cosignature by a listed witness that does not verify included), PolicyError for a quorum not met."""
        opened = open_note(note, [*self.logs, *log_keys, *self.witnesses.values()])
        checkpoint = parse_checkpoint(opened.text)
        cosigners = frozenset(opened.cosigned_at)
        if require_quorum and not self.quorum_met(cosigners):
            have = ", ".join(sorted(cosigners)) or "no witness"
            raise PolicyError(f"the checkpoint of {checkpoint.size} is cosigned by {have}: not the quorum {self.quorum!r}")
        return checkpoint, dict(opened.cosigned_at)


def parse_policy(data: bytes) -> Policy:
    """The policy in ``data``. Raises PolicyError naming the line and what is wrong with it."""
    bad = _FORBIDDEN.search(data)
    if bad:
        raise PolicyError(f"the policy holds the control character 0x{bad.group()[0]:02x}")
    builder = _Builder()
    for number, raw in enumerate(data.decode("utf-8", "surrogateescape").split("\n"), start=1):
        words = _WHITESPACE.split(raw.strip(" \t"))
        if words == [""] or words[0].startswith("#"):
            continue
        try:
            builder.line(words)
        except (PolicyError, EncodingError) as exc:
            raise PolicyError(f"policy line {number}: {exc}") from exc
    if builder.quorum is None:
        raise PolicyError("the policy has no quorum line")
    return Policy(tuple(builder.logs), builder.witnesses, builder.groups, builder.quorum)


@dataclass
class _Builder:
    logs: list[NoteVerifier] = field(default_factory=list)
    witnesses: dict[str, NoteVerifier] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str | None = None
    publics: set[bytes] = field(default_factory=set)

    def line(self, words: list[str]) -> None:
        keyword, arguments = words[0], words[1:]
        if keyword == "log" and len(arguments) in (1, 2):
            self.logs.append(self._key(arguments[0], log=True))
        elif keyword == "witness" and len(arguments) in (2, 3):
            self._new_name(arguments[0])
            self.witnesses[arguments[0]] = self._key(arguments[1], log=False)
        elif keyword == "group" and len(arguments) >= 3:
            self._group(arguments[0], arguments[1], arguments[2:])
        elif keyword == "quorum" and len(arguments) == 1:
            if self.quorum is not None:
                raise PolicyError("a second quorum line")
            self.quorum = self._defined(arguments[0])
        else:
            raise PolicyError(f"{keyword!r} with {len(arguments)} arguments is not a log, witness, group or quorum line")

    def _key(self, text: str, *, log: bool) -> NoteVerifier:
        key = parse_verifier_key(text)
        if key.is_cosigner == log:
            raise PolicyError(f"{key.name} is a {'witness' if log else 'log'}'s key, not a {'log' if log else 'witness'}'s")
        if key.public in self.publics:
            raise PolicyError(f"the key of {key.name} is listed twice")
        self.publics.add(key.public)
        return key

    def _new_name(self, name: str) -> None:
        if name == NONE or name in self.witnesses or name in self.groups:
            raise PolicyError(f"the name {name!r} is already defined")

    def _defined(self, name: str) -> str:
        if name != NONE and name not in self.witnesses and name not in self.groups:
            raise PolicyError(f"{name!r} is not defined on a line before")
        return name

    def _group(self, name: str, threshold: str, members: list[str]) -> None:
        self._new_name(name)
        for member in members:
            if member == NONE:
                raise PolicyError("'none' is not a group member")
            self._defined(member)
        if len(set(members)) != len(members):
            raise PolicyError(f"group {name!r} lists a member twice")
        count = {"all": len(members), "any": 1}.get(threshold)
        if count is None:
            if not re.fullmatch(r"[1-9][0-9]*", threshold) or not 1 <= int(threshold) <= len(members):
                raise PolicyError(f"group {name!r}: threshold {threshold!r} is not all, any or 1..{len(members)}")
            count = int(threshold)
        self.groups[name] = Group(count, tuple(members))
