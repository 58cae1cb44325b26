"""Builds the `mgconn` Python package: the package in python/mgconn and its extension module
mgconn._mgconn, which compiles libmgconn's C sources in (no separately installed library needed).
System packages (libmongoc-dev, pkg-config) come from scripts/setup.sh."""
import glob
import os
import shlex
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

here = os.path.dirname(os.path.abspath(__file__))


def pkg_config(*args):
    try:
        out = subprocess.check_output(["pkg-config", *args, "libmongoc-1.0"], text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit("mgconn needs libmongoc-dev and pkg-config: run scripts/setup.sh first") from exc
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
    extra_link_args=pkg_config("--libs") + ["-lpthread"],
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
