"""Builds the `mgconn` Python package: the package in python/mgconn and its extension module
mgconn._mgconn, which compiles libmgconn's C sources in (no separately installed library needed).
The pinned mongo-c-driver (third_party/) is linked in statically; system packages (OpenSSL, Cyrus
SASL, pkg-config, cmake) come from scripts/setup.sh."""
import functools
import glob
import os
import shlex
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

here = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def driver_prefix():
    """The pinned mongo-c-driver's build: $MGCONN_DRIVER_PREFIX, else the one scripts/build-driver.sh
    keeps in the deps cache ($MGCONN_DEPS, else .deps), building it there the first time."""
    if os.environ.get("MGCONN_DRIVER_PREFIX"):
        return os.environ["MGCONN_DRIVER_PREFIX"]
    deps = os.environ.get("MGCONN_DEPS") or os.path.join(here, ".deps")
    try:
        out = subprocess.check_output(["bash", os.path.join(here, "scripts", "build-driver.sh"), deps], text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit("mgconn: building mongo-c-driver failed (see above); scripts/setup.sh installs "
                         "what it needs") from exc
    return out.strip().splitlines()[-1]


def pkg_config(*args):
    """The driver's flags for static linking: the extension carries libmongoc and libbson inside."""
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(driver_prefix(), "lib", "pkgconfig"))
    try:
        out = subprocess.check_output(["pkg-config", *args, "mongoc2-static"], text=True, env=env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit("mgconn needs pkg-config: run scripts/setup.sh first") from exc
    return shlex.split(out)


def rel(pattern):
    return sorted(os.path.relpath(p, here) for p in glob.glob(os.path.join(here, pattern)))


class build_py_fresh(build_py):
    """A module removed from python/mgconn must not linger in an earlier build's copy (and so in
    the wheel): the build tree is kept between builds to reuse the compiled extension."""

    def run(self):
        for path in glob.glob(os.path.join(self.build_lib, "mgconn", "*.py")):
            if not os.path.exists(os.path.join(here, "python", "mgconn", os.path.basename(path))):
                os.remove(path)
        super().run()


extension = Extension(
    "mgconn._mgconn",
    sources=rel("python/mgconn/_ext/*.c") + rel("core/src/*.c"),
    include_dirs=["core/include", "core/src"],
    extra_compile_args=pkg_config("--cflags") + ["-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden",
                                                 "-Wall", "-Wno-unused-parameter",
                                                 "-Werror=implicit-function-declaration"],
    # The driver's symbols stay inside the extension (another libmongoc in the process is not ours).
    extra_link_args=pkg_config("--libs") + ["-lpthread", "-ldl", "-Wl,--exclude-libs,ALL"],
    depends=rel("python/mgconn/_ext/*.h") + rel("core/src/*.h") + rel("core/include/*.h"),
)

with open(os.path.join(here, "README.md"), encoding="utf-8") as f:
    readme = f.read()

setup(
    name="mgconn",
    version="0.1.0",  # the same as mgconn.__version__ and the core's MGCONN_VERSION_STRING (a test checks)
    description="MongoDB connections with Mongoose's behaviour for Python: buffering, events, models; "
                "the host thread never waits for the database",
    long_description=readme,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: C",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        *[f"Programming Language :: Python :: 3.{minor}" for minor in range(9, 14)],
        "Programming Language :: Python :: Implementation :: CPython",
        "Framework :: AsyncIO",
        "Framework :: Pytest",
        "Topic :: Database",
        "Typing :: Typed",
    ],
    package_dir={"": "python"},
    packages=["mgconn"],
    package_data={"mgconn": ["py.typed", "*.pyi"]},
    ext_modules=[extension],
    cmdclass={"build_py": build_py_fresh},
    python_requires=">=3.9",
    entry_points={"pytest11": ["mgconn = mgconn.testing"]},
    options={"build": {"build_base": "build-python"}},  # build/ is CMake's
)
