"""Root cause first: group findings by the defect that explains them, and order them.

Checks measure each property on its own and never block each other for having *found*
something, so one defect often fails several checks (statistics over the wrong axes also
make the outputs, the gradients and every sequence differ). This step folds such symptoms
under their cause: the cause is the finding to fix, its consequences are listed under it.

JSON (see DESIGN.md): every finding gets `"caused_by"` (the root cause's code, or null)
and `"consequences"` (`[{"code", "message"}]` of the findings it explains, or []). A
consequence is judged with its cause (`effective_severities`): never more severe than it
(the check's own severity kept in details["measured_severity"]) and waived with it
(details["waived_with"]); counts, the verdict and the exit code use those.

Measured attribution (a finding's details, read by `measured_root`) overrides the table:
`"explained_by"` (candidate causes in measured order, the first present one wins),
`"accounted_for"` (true: the finding is a root of its own), and `"possible_causes"` (the only
causes that can produce what was observed: the table's precedence applies among those, and with
none of them present the finding is a root of its own; `explained_by` is restricted to them too).

Order: root causes first, most severe first (a root counts as severe as the worst finding
it explains), then the larger measured impact (`details["impact"]`, relative output error)
first, then the root that explains more findings, then the checks' own order. Consequences
follow, in their roots' order; waived findings come last and take part in no grouping (the
user set them aside).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bnconform.findings import Finding

EVERYTHING = "*"

# Compared with the spec's reference outputs (or values derived from them): any defect in
# how the output is computed shows in each of these too. (dtype-support is not here: it
# judges each precision against the class's own float64 result, so a spec deviation does
# not show in it.)
_OUTPUT_SYMPTOMS = ("output-mismatch", "grad-mismatch", "sequence-mismatch", "unstable-variance",
                    "device-parity", "non-contiguous", "memory-format")
# Compared with the reference's running statistics after training steps.
_RUNNING_SYMPTOMS = ("sequence-mismatch", "device-parity", "non-contiguous", "memory-format")
# Depend on where the tensors live (state_dict, .to(), a reload in a sequence). Not
# dtype-support: its finding mixes dtype changes with low-precision values, which a
# registration defect does not explain, so it stays a root of its own (unless it measured
# only statistics keeping their dtype: its details["explained_by"]).
_REGISTRATION_SYMPTOMS = ("state-dict", "device-transfer", "device-parity", "sequence-mismatch")

# cause -> the codes it explains. Row order is precedence: when several present causes
# explain one finding, the earliest row wins. Rows go from the most basic defect (nothing
# runs) through the computation of the output and the update of the statistics (which
# change values) to registration and shape (which change where tensors live).
CONSEQUENCES: dict[str, tuple[str, ...]] = {
    # A crash explains nothing else: as a gate it blocks every check (so there is nothing to
    # fold), and a crash another check ran into (an eval forward that raises, say) leaves the
    # findings of checks that did measure independent of it (momentum found on train steps).
    "construct-failed": (),
    "forward-failed": (),
    # Statistics over the wrong axes also give them the wrong shape, and wrong outputs.
    "reduction-axes": ("running-stats-shape", *_OUTPUT_SYMPTOMS),
    # A class that never creates running statistics has to normalize eval with batch ones,
    # and has nothing to save, move or follow through a sequence.
    "running-stats-missing": ("eval-uses-batch-stats", "output-mismatch", *_REGISTRATION_SYMPTOMS),
    # Deciding the mode from grad mode flips train/eval behaviour under no_grad/with grad,
    # in every probe that runs eval with grad enabled.
    "mode-follows-grad": ("eval-uses-batch-stats", "eval-updates-running-stats", "gradcheck",
                          *_OUTPUT_SYMPTOMS),
    # Training normalized with running/EMA statistics: every output-based comparison differs,
    # and a forward that reads statistics it also updates has no consistent backward.
    "train-uses-running-stats": (*_OUTPUT_SYMPTOMS, "gradcheck"),
    # Eval normalized with batch statistics: eval outputs differ everywhere they are compared.
    "eval-uses-batch-stats": _OUTPUT_SYMPTOMS,
    # The normalization itself differs: the outputs and everything compared with them.
    "norm-variance-estimator": _OUTPUT_SYMPTOMS,
    "eps-placement": _OUTPUT_SYMPTOMS,
    "eps-ignored": _OUTPUT_SYMPTOMS,
    "eps-default": _OUTPUT_SYMPTOMS,
    "affine-apply": _OUTPUT_SYMPTOMS,
    # Statistics that never move are wrong after every training step.
    "running-stats-not-updated": ("running-var-estimator", "output-mismatch", *_RUNNING_SYMPTOMS),
    # A wrong running-statistics update drifts away from the reference step by step (these
    # come before the shape rows: they change the values a sequence compares, a shape does not).
    # An inverted or hard-coded formula also blends momentum=None's 1/n with the wrong weight.
    "momentum-inverted": (*_RUNNING_SYMPTOMS, "momentum-none"),
    "momentum-ignored": (*_RUNNING_SYMPTOMS, "momentum-none"),
    "momentum-default": _RUNNING_SYMPTOMS,
    "running-var-estimator": _RUNNING_SYMPTOMS,
    # Eval that updates the statistics changes them where the reference does not, and between
    # the evaluations of a finite-difference gradient check.
    "eval-updates-running-stats": ("sequence-mismatch", "device-parity", "gradcheck"),
    # Wrong initial statistics differ from the first step of every sequence.
    "running-stats-init": ("sequence-mismatch",),
    # Mis-shaped statistics (e.g. (1, C, 1, 1), or a shape that drifts after a step) do not
    # load into torch's state_dict layout, are compared wrongly, and move as other tensors.
    "running-stats-shape": (*_REGISTRATION_SYMPTOMS, "running-stats-init", "output-mismatch",
                            "non-contiguous", "memory-format"),
    # Plain attributes are not saved, moved or converted with the module.
    "running-stats-not-buffers": _REGISTRATION_SYMPTOMS,
    # gamma/beta that are not Parameters: no gradients, not saved, not moved.
    "affine-params": (*_REGISTRATION_SYMPTOMS, "grad-mismatch", "gradcheck"),
    # A counter that is missing or counts wrongly is saved and followed wrongly, and momentum=None
    # averages with 1 / that counter.
    "num-batches-tracked": ("state-dict", "sequence-mismatch", "momentum-none"),
    # Statistics that keep the autograd graph break the next backward in a sequence.
    "running-stats-grad": ("sequence-mismatch",),
    # Cancellation in E[x^2] - E[x]^2 shows as wrong outputs, and grows in low precision.
    "unstable-variance": ("output-mismatch", "dtype-support", "device-parity", "grad-mismatch"),
    # A state_dict that does not round-trip breaks the reload step of a sequence.
    "state-dict": ("sequence-mismatch",),
    # Gradients that differ from the reference's: a backward that also disagrees with its own
    # forward (gradcheck) is the same defect seen from the other side.
    "grad-mismatch": ("gradcheck",),
    # Wrong outputs give wrong gradients and differ in every other comparison too.
    "output-mismatch": ("grad-mismatch", "sequence-mismatch", "device-parity", "non-contiguous",
                        "memory-format"),
    # State left on the wrong device makes the device results differ.
    "device-transfer": ("device-parity",),
    # A class that breaks on strided input also breaks on channels_last.
    "non-contiguous": ("memory-format",),
    # SyncBatchNorm (bnconform.distributed): statistics not shared, or shared with the wrong
    # weights or counts, also leave the ranks' running statistics apart and differ from the
    # full-batch reference; so do gradients that miss the global statistics.
    "sync-not-synchronized": ("sync-running-stats-diverge", "sync-grad", "sync-mismatch"),
    "sync-stats-local-count": ("sync-running-stats-diverge", "sync-grad", "sync-mismatch"),
    "sync-grad": ("sync-mismatch",),
    "sync-running-stats-diverge": ("sync-mismatch",),
}


def explains(cause: str, code: str) -> bool:
    """True when a finding `cause` accounts for a finding `code` (never itself)."""
    targets = CONSEQUENCES.get(cause, ())
    return cause != code and (EVERYTHING in targets or code in targets)


@dataclass
class Node:
    """One active finding, its position in the checks' order, and what it explains."""

    finding: Finding
    index: int
    consequences: list[Node] = field(default_factory=list)

    @property
    def impact(self) -> float | None:
        value = self.finding.details.get("impact") if isinstance(self.finding.details, Mapping) else None
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else None


def root_code(code: str, present: Sequence[str], seen: frozenset[str] = frozenset()) -> str:
    """The most fundamental present cause of `code` (itself when nothing present explains it)."""
    for cause in CONSEQUENCES:  # row order = precedence
        if cause in present and cause not in seen and explains(cause, code):
            return root_code(cause, present, seen | {code})
    return code


def group(findings: Sequence[Finding]) -> list[Node]:
    """Roots with their consequences attached, in report order (see `order_key`)."""
    nodes = [Node(f, i) for i, f in enumerate(findings) if not f.waived]
    present = list(dict.fromkeys(n.finding.code for n in nodes))
    first: dict[str, Node] = {}
    for node in nodes:
        first.setdefault(node.finding.code, node)
    roots = []
    for node in nodes:
        root = measured_root(node.finding, present) or root_code(node.finding.code, present)
        if root == node.finding.code:
            roots.append(node)
        else:
            first[root].consequences.append(node)
    for root in roots:
        root.consequences.sort(key=order_key)
    return sorted(roots, key=order_key)


def measured_root(finding: Finding, present: Sequence[str]) -> str | None:
    """What a comparison measured about its own cause beats the table: a mismatch that the
    reference with the measured deviations reproduces is theirs (`explained_by`); one that
    remains with them accounted for is a root of its own (`accounted_for`); one whose
    observation only some causes can produce (`possible_causes`) goes to the table's first
    present row among those, and is a root of its own when none of them is present.
    None: nothing measured, the table decides."""
    details = finding.details if isinstance(finding.details, Mapping) else {}
    if details.get("accounted_for"):
        return finding.code
    possible = details.get("possible_causes")
    allowed = None if possible is None else set(possible)
    causes = [code for code in details.get("explained_by") or ()
              if code in present and (allowed is None or code in allowed)]
    if causes:
        return root_code(causes[0], present)
    if allowed is None:
        return None
    for cause in CONSEQUENCES:  # row order = precedence, among the possible causes only
        if cause in allowed and cause in present and explains(cause, finding.code):
            return root_code(cause, present, frozenset({finding.code}))
    return finding.code


def effective_severities(findings: Sequence[Finding]) -> list[Finding]:
    """A consequence is never more severe than its cause: an eps default that is only a warning
    does not fail a run through the output difference it causes. The severity the check gave
    is kept in details["measured_severity"]."""
    findings = waived_with_their_cause(findings)
    capped: dict[int, Finding] = {}
    for root in group(findings):
        for node in root.consequences:
            own, cause = node.finding.severity, root.finding.severity
            if own.rank > cause.rank:
                details = {**node.finding.details, "measured_severity": own.value}
                capped[node.index] = replace(node.finding, severity=cause, details=details)
    return [capped.get(i, f) for i, f in enumerate(findings)]


def waived_with_their_cause(findings: Sequence[Finding]) -> list[Finding]:
    """Waiving a cause waives what it explains (still reported, never failing the run):
    otherwise `--ignore eps-default` would fail on the output difference the eps causes."""
    present = list(dict.fromkeys(f.code for f in findings))
    waived = {f.code for f in findings if f.waived} - {f.code for f in findings if not f.waived}
    out = []
    for finding in findings:
        root = measured_root(finding, present) or root_code(finding.code, present)
        if not finding.waived and root != finding.code and root in waived:
            finding = replace(finding, waived=True, details={**finding.details, "waived_with": root})
        out.append(finding)
    return out


def order_key(node: Node) -> tuple[int, int, float, int, int]:
    """Most severe first (a root is as severe as the worst finding it explains), then measured
    impact (larger first; measured before unmeasured), then the root that explains more
    (fixing it clears more of the report), then the checks' order."""
    tree = [node, *node.consequences]
    severity = max(n.finding.severity.rank for n in tree)
    impacts = [n.impact for n in tree if n.impact is not None]
    return (-severity, 0 if impacts else 1, -max(impacts, default=0.0), -len(node.consequences), node.index)


def diagnose(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """The findings as JSON, ordered: roots, then consequences (each with `caused_by`), then waived."""
    roots = group(findings)
    out = [annotated(r.finding, None, r.consequences) for r in roots]
    out += [annotated(c.finding, r.finding.code, []) for r in roots for c in r.consequences]
    out += [annotated(f, None, []) for f in findings if f.waived]
    return out


def annotated(finding: Finding, caused_by: str | None, consequences: Sequence[Node]) -> dict[str, Any]:
    summary = [{"code": c.finding.code, "message": c.finding.message} for c in consequences]
    return {**finding.to_json(), "caused_by": caused_by, "consequences": summary}


def annotate_checks(checks: list[dict[str, Any]], findings: Sequence[Mapping[str, Any]]) -> None:
    """Copy `caused_by`/`consequences`, and the severity and waiver the diagnosis settled, onto
    the same findings inside each check's JSON (JUnit and the pytest plugin read those)."""
    by_key = {_key(f): f for f in findings}
    for check in checks:
        for finding in check.get("findings", []):
            match = by_key.get(_key(finding), {})
            finding["caused_by"] = match.get("caused_by")
            finding["severity"] = match.get("severity", finding["severity"])
            finding["waived"] = match.get("waived", finding["waived"])  # waived with its cause
            finding["details"] = match.get("details", finding["details"])
            finding["consequences"] = list(match.get("consequences", []))


def _key(finding: Mapping[str, Any]) -> tuple[str, str, str]:
    """The identity result.unique_findings uses: one crash seen by several checks is one finding."""
    message = str(finding.get("message")).split(" (while checking")[0]
    return (str(finding.get("code")), message, str(finding.get("device")))
