"""The policy reloader against a real directory: a file rewritten in place is loaded only once whole, and
no failure to read the directory ends the reloading."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from mcp_gateway.policy import load_policies
from mcp_gateway.policy.engine import PolicyEngine
from mcp_gateway.policy.load import PolicyError
from mcp_gateway.policy.reloader import PolicyReloader

RULES = 60


def _rule(index: int) -> str:
    return f"  - name: r{index}\n    effect: deny\n    targets: {{tools: ['t{index}']}}\n"


async def _watching(directory: Path, installed: list[int], results: list[bool]) -> PolicyReloader:
    async def install(engine: PolicyEngine) -> None:
        installed.append(len(engine))

    reloader = PolicyReloader(directory, install, results.append, settle=0.2)
    await reloader.load_first()
    reloader.watch()
    return reloader


def test_a_file_written_in_place_piece_by_piece_is_loaded_only_when_whole(tmp_path: Path) -> None:
    # Every prefix of the file ending at a rule is itself a valid policy with fewer rules: a reloader that
    # loaded whatever it found mid-write would install one of them (the write spans several polls).
    policy = tmp_path / "policy.yaml"
    policy.write_text("tenants: ['*']\ndefault: allow\n")

    async def scenario() -> tuple[list[int], list[bool]]:
        installed: list[int] = []
        results: list[bool] = []
        reloader = await _watching(tmp_path, installed, results)
        with policy.open("w") as out:  # truncates, as editors that save in place do
            out.write("tenants: ['*']\ndefault: allow\nrules:\n")
            for index in range(RULES):
                out.write(_rule(index))
                out.flush()
                await asyncio.sleep(0.01)
        for _ in range(100):
            if installed[-1] == RULES:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # two more polls: nothing else is installed
        await reloader.stop()
        return installed, results

    installed, results = asyncio.run(scenario())
    assert installed == [0, RULES]
    assert results == [True, True]


def test_a_truncated_file_is_rejected_and_the_last_good_policy_stays(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tenants: ['*']\ndefault: allow\nrules:\n" + _rule(0))

    async def scenario() -> tuple[list[int], list[bool], dict]:
        installed: list[int] = []
        results: list[bool] = []
        reloader = await _watching(tmp_path, installed, results)
        policy.write_text("# only a comment now\n")
        for _ in range(100):
            if results[-1] is False:
                break
            await asyncio.sleep(0.05)
        await reloader.stop()
        return installed, results, reloader.status

    installed, results, status = asyncio.run(scenario())
    assert installed == [1] and results == [True, False]
    assert status["ok"] is False and "policy.yaml:1: the file sets nothing" in status["error"]


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing yet\n"])
def test_an_empty_policy_file_is_an_error_not_an_empty_policy(tmp_path: Path, text: str) -> None:
    (tmp_path / "empty.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"empty\.yaml:1: the file sets nothing"):
        load_policies(tmp_path)


def _too_deep_to_list(parent: Path) -> Path:
    """A directory tree whose full path is longer than the kernel takes (PATH_MAX): listing it fails with
    ENAMETOOLONG, an OSError like EMFILE, made with real directories (built relative to a dir fd)."""
    top = parent / ("d" * 250)
    fd = os.open(parent, os.O_RDONLY)
    try:
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    return top


async def _until(predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def test_a_directory_that_cannot_be_read_is_reported_retried_and_recovers(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tenants: ['*']\ndefault: allow\nrules:\n" + _rule(0))

    async def scenario() -> tuple[list[int], list[bool], list[dict]]:
        installed: list[int] = []
        results: list[bool] = []
        statuses: list[dict] = []
        reloader = await _watching(tmp_path, installed, results)
        deep = _too_deep_to_list(tmp_path)
        await _until(lambda: not reloader.status["ok"])
        statuses.append(dict(reloader.status))
        await _until(lambda: reloader.status["retry_in"] > statuses[0]["retry_in"])  # retrying, backing off
        statuses.append(dict(reloader.status))
        shutil.rmtree(deep)
        await _until(lambda: reloader.status["ok"])
        statuses.append(dict(reloader.status))
        policy.write_text("tenants: ['*']\ndefault: allow\nrules:\n" + _rule(0) + _rule(1))  # still watching
        await _until(lambda: installed[-1] == 2)
        await reloader.stop()
        return installed, results, statuses

    installed, results, (failed, retried, recovered) = asyncio.run(scenario())
    assert "File name too long" in failed["error"] and failed["rules"] == 1  # the last good policy stays
    assert retried["failed_at"] == failed["failed_at"]
    assert recovered["ok"] is True and recovered["rules"] == 1 and "error" not in recovered
    assert installed == [1, 1, 2]  # reloaded afresh once readable, then the edit
    assert results == [True, False, True, True]  # one failure reported, not one per retry


def test_a_file_that_is_not_text_is_rejected_and_reloading_goes_on(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tenants: ['*']\ndefault: allow\n")

    async def scenario() -> tuple[list[int], dict]:
        installed: list[int] = []
        reloader = await _watching(tmp_path, installed, [])
        policy.write_bytes(b"tenants: ['*']\ndefault: allow\n\xff\xfe\x00")
        await _until(lambda: not reloader.status["ok"])
        rejected = dict(reloader.status)
        policy.write_text("tenants: ['*']\ndefault: allow\nrules:\n" + _rule(0))
        await _until(lambda: installed[-1] == 1)
        await reloader.stop()
        return installed, rejected

    installed, rejected = asyncio.run(scenario())
    assert "policy.yaml: not UTF-8 text" in rejected["error"]
    assert installed == [0, 1]
