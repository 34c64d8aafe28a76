"""pip install --no-build-isolation ./python  (needs python3-cffi,
python3-setuptools and an installed libwitch: pkg-config libwitch, or
WITCH_INCLUDE_DIRS / WITCH_LIBRARY_DIRS; see README.md)."""

from setuptools import setup

setup(
    name="witch",
    version="0.1.0",
    description="Python binding of libwitch (witch-core networking core)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="see the witch-core source tree",
    packages=["witch"],
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    install_requires=["cffi>=1.15"],
    cffi_modules=["witch_build.py:ffibuilder"],
    zip_safe=False,
)
