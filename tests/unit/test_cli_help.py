"""Each command's --help says the environment it reads and what its exit statuses mean (issue 21)."""

from __future__ import annotations

import pytest

from timpush.cli import main


@pytest.mark.parametrize(("command", "says"), [
    ((), ["IM_SDKAPPID + IM_SECRET_KEY", "IM_ENDPOINT or IM_REGION", "0 done, 1 something failed at run time, 2 a"]),
    (("invoke",), ["DEAD_LETTER ", "required with\n", "--platform scf", "  1  the handler failed at run time",
                   "  2  the event file, the event or the environment is wrong"]),
    (("usersig",), ["IM_SECRET_KEY", "pipe it on stdin", "IM_SDKAPPID", "exit status: 0 printed; 2 no key"]),
    (("demo",), ["none of yours", "exit status: 0 the demo ran to its end; 2 a bad argument"]),
    (("tasks",), ["IM_APPS", "IM_ENDPOINT or IM_REGION", "each call waits 15 s at most", "-2 timed out",
                  "  2  bad arguments or configuration, or no --sdkappid"]),
    (("tasks", "get"), ["IM_SECRET_SOURCE", "  1  a call failed"]),
    (("bundle",), ["PyPI", "TIMPUSH_PYTHON312", "1 the build failed", "2 a bad argument (an --arch"]),
    (("emulator",), ["IM_SECRET_KEY", "unless --key", "1 cannot listen", "2 a bad argument"]),
], ids=["timpush", "invoke", "usersig", "demo", "tasks", "tasks-get", "bundle", "emulator"])
def test_help_says_the_environment_and_the_exit_statuses(command: tuple[str, ...], says: list[str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "environment" in out and "exit status" in out
    for text in says:
        assert text in out, text
