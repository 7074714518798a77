"""A simple reference translator for the engine's translation log.

It knows nothing of TLBs, roots or ASIDs: only which pages each mm has mapped with
which protection (from the VMA events) and which frame a page got when first touched.
Every access the engine made must agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACCESS, MAP_VMA, UNMAP_VMA, PROTECT_VMA, NEW_MM, COPY_MM, DROP_MM = range(7)
LOAD, STORE, FETCH = range(3)
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
PAGE = 4096


@dataclass
class ReferenceMm:
    prot: dict[int, int] = field(default_factory=dict)    # vpn -> protection
    frames: dict[int, int] = field(default_factory=dict)  # vpn -> frame, once touched


def allowed(prot: int | None, kind: int) -> bool:
    if prot is None:
        return False
    if kind == STORE:
        return bool(prot & PROT_WRITE)
    if kind == FETCH:
        return bool(prot & PROT_EXEC)
    return bool(prot & PROT_READ)


def replay(log: list[tuple]) -> list[str]:
    """Replays (kind, mm, other_mm, va, end, access/prot, frame, writable) records.

    Returns the disagreements, empty when the engine behaved like the reference.
    """
    mms: dict[int, ReferenceMm] = {}
    owner: dict[int, tuple[int, int]] = {}  # frame -> (mm, vpn) currently mapping it
    problems: list[str] = []

    def drop(mm_id: int, vpn: int) -> None:
        frame = mms[mm_id].frames.pop(vpn, None)
        if frame is not None and owner.get(frame) == (mm_id, vpn):
            del owner[frame]

    for n, (kind, mm, other, va, end, acc, frame, writable) in enumerate(log):
        if kind == NEW_MM:
            mms[mm] = ReferenceMm()
        elif kind == COPY_MM:
            mms[mm] = ReferenceMm(prot=dict(mms[other].prot))
        elif kind == DROP_MM:
            for vpn in list(mms[mm].frames):
                drop(mm, vpn)
            mms[mm].prot.clear()
        elif kind == MAP_VMA:
            for vpn in range(va // PAGE, end // PAGE):
                mms[mm].prot[vpn] = acc
        elif kind == UNMAP_VMA:
            for vpn in range(va // PAGE, end // PAGE):
                mms[mm].prot.pop(vpn, None)
                drop(mm, vpn)
        elif kind == PROTECT_VMA:
            for vpn in range(va // PAGE, end // PAGE):
                mms[mm].prot[vpn] = acc
        elif kind == ACCESS:
            vpn = va // PAGE
            ref = mms[mm]
            ok = allowed(ref.prot.get(vpn), acc)
            where = f"record {n}: mm {mm} va {va:#x} kind {acc}"
            if ok != (frame != -1):
                problems.append(f"{where}: engine {'faulted' if frame == -1 else 'translated'}, "
                                f"reference says {'allowed' if ok else 'SIGSEGV'}")
                continue
            if not ok:
                continue
            if bool(writable) != bool(ref.prot[vpn] & PROT_WRITE):
                problems.append(f"{where}: writable={writable} but VMA prot is {ref.prot[vpn]}")
            known = ref.frames.get(vpn)
            if known is None:
                if frame in owner:
                    problems.append(f"{where}: frame {frame} already maps {owner[frame]}")
                ref.frames[vpn] = frame
                owner[frame] = (mm, vpn)
            elif known != frame:
                problems.append(f"{where}: frame {frame}, but the page was mapped to {known}")
    return problems
