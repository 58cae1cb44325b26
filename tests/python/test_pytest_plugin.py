"""The pytest plugin as a user's project meets it, in a pytest of its own (a child process): with no
server to test against it says what to do, and it skips instead when asked."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

USER_TESTS = '''
def test_needs_a_server(mongodb_uri):
    assert mongodb_uri.startswith("mongodb://")

def test_needs_its_own_server(ferretdb):
    assert ferretdb.port

def test_needs_nothing():
    assert True
'''


def user_pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MGCONN_")}
    child_env.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", str(tmp_path), *args],
                          capture_output=True, text=True, env=child_env, cwd=tmp_path, timeout=120)


def test_a_bad_ferretdb_path_fails_the_tests_saying_what_to_do(tmp_path):
    missing = tmp_path / "no-such-ferretdb"
    out = user_pytest(tmp_path, MGCONN_FERRETDB=str(missing))
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "2 errors" in text and "1 passed" in text, text
    assert f"MGCONN_FERRETDB={missing}: no such file" in text, text
    for advice in ("scripts/setup.sh", "MGCONN_TEST_URI", "--mgconn-skip-without-server"):
        assert advice in text, (advice, text)
    assert "Errno" not in text and "Traceback" not in text, text


def test_a_ferretdb_path_that_is_not_a_program_is_named(tmp_path):
    not_a_program = tmp_path / "ferretdb"
    not_a_program.write_text("")
    out = user_pytest(tmp_path, MGCONN_FERRETDB=str(not_a_program))
    assert f"MGCONN_FERRETDB={not_a_program}: not executable" in out.stdout, out.stdout


def test_without_a_server_the_tests_are_skipped_when_asked(tmp_path):
    missing = str(tmp_path / "no-such-ferretdb")
    for how in ({"args": ["--mgconn-skip-without-server"], "env": {}},
                {"args": [], "env": {"MGCONN_TEST_SKIP_WITHOUT_SERVER": "1"}}):
        out = user_pytest(tmp_path, *how["args"], MGCONN_FERRETDB=missing, **how["env"])
        assert out.returncode == 0, out.stdout + out.stderr
        assert "1 passed, 2 skipped" in out.stdout and "MGCONN_TEST_URI" in out.stdout, out.stdout
