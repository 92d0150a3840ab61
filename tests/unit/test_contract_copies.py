"""The repository carries the source-system contract and its checker; they stay copies of the originals.

docs/contracts/ holds the contract (source-systems.md, resources.json) and tests/contract/ the
black-box checker with the resources.json it reads from its own folder. Where the contracts folder
the copies came from exists beside the repository (../shared/contracts/), every copy must still be
byte-identical to it; a plain clone has no such folder and that check is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ORIGINALS = REPO.parent / "shared" / "contracts"
COPIES = {  # copy in the repository → file name in ../shared/contracts
    "docs/contracts/source-systems.md": "source-systems.md",
    "docs/contracts/resources.json": "resources.json",
    "tests/contract/check_server.py": "check_server.py",
    "tests/contract/resources.json": "resources.json",
}


def test_the_checker_reads_the_same_resources_as_the_docs():
    # check_server.py opens resources.json next to itself; it must be the documented one
    assert (REPO / "tests/contract/resources.json").read_bytes() == (
        REPO / "docs/contracts/resources.json"
    ).read_bytes()


@pytest.mark.parametrize("copy", sorted(COPIES))
def test_copy_matches_the_original(copy):
    if not ORIGINALS.is_dir():
        pytest.skip(f"no {ORIGINALS} beside the repository (a plain clone): nothing to compare with")
    original = ORIGINALS / COPIES[copy]
    assert (REPO / copy).read_bytes() == original.read_bytes(), (
        f"{copy} differs from {original}: copy the original over it (cp {original} {REPO / copy})"
    )
