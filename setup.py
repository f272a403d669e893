"""fairseq-searnn: SeaRNN and differentiable scheduled sampling as a fairseq plugin."""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="fairseq-searnn",
    version="0.1.0",
    description=(
        "SeaRNN (learning-to-search training with global-local losses) and "
        "differentiable scheduled sampling for fairseq"
    ),
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.8",
    packages=find_packages(include=["fairseq_searnn", "fairseq_searnn.*"]),
    install_requires=[
        # fairseq 0.12.2 does not import on Python >= 3.11 (dataclass mutable
        # defaults); fairseq-fixed is the same `fairseq` module, patched.
        'fairseq==0.12.2; python_version < "3.11"',
        'fairseq-fixed==0.12.3.1; python_version >= "3.11"',
        "torch",
        "sacrebleu>=2.0",
        "sentencepiece",
    ],
    extras_require={
        # transformers for the tests of fairseq_searnn.hf (the version they were run with)
        "test": ["pytest", "matplotlib", "sacremoses", "ruff==0.17.6", "transformers==5.25.0",
                 "accelerate>=1.1.0"],
        # fairseq_searnn.hf: SeaRNN for transformers seq2seq models (tested with 5.25; its
        # Trainer needs accelerate)
        "hf": ["transformers>=5.25,<6", "accelerate>=1.1.0"],
        "examples": ["matplotlib", "sacremoses"],
        "bench": ["rapidfuzz"],
    },
    entry_points={
        "console_scripts": [
            "fairseq-searnn-user-dir = fairseq_searnn.cli:print_user_dir",
            "fairseq-searnn-demo = fairseq_searnn.demo:main",
            "fairseq-searnn-diagnose = fairseq_searnn.diagnose.cli:main",
            "fairseq-searnn-replay-plateau = fairseq_searnn.recipes.plateau:main",
        ],
    },
)
