"""Build of the compiled hot path: native/fsd_native.pyx becomes fsd._native (metadata lives in pyproject.toml)."""
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.byteorder != "little":
    raise SystemExit("fsd's native codec assumes a little-endian machine")

extensions = [
    Extension(
        "fsd._native",
        ["native/fsd_native.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}, quiet=True))
