"""Multi-dataset, multi-skeleton monocular 3D human pose estimation (MeTRAbs + ACAE).

Pins follow shared/DESIGN.md: the set measured to install and import together on Python 3.11.
"""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    'tensorflow==2.21.0',
    'keras==3.15.1',
    'numpy==2.4.6',
    'scipy==1.17.1',
    'h5py==3.14.0',
    'absl-py==2.5.1',
    'ml-collections==1.1.0',
    'imageio==2.38.1',
    'pillow==13.0.0',
    'pycocotools==2.0.11',
    'cdflib==1.3.16',
    'tqdm==4.70.1',
    'matplotlib==3.11.2',
    'tensorboard==2.21.0',
    # JRDB's calibration is YAML (already installed with ml-collections; pinned as we import it).
    'pyyaml==6.0.4',
    # Image warps of the perspective crop (remap with distortion) need a fast resampler.
    'opencv-python-headless==5.0.0.93',
    # Deployment (metrabs.export --format=onnx|tflite, metrabs.video, TF-Hub loading): measured
    # to install and import with the pins above (protobuf stays at what TF 2.21 takes).
    'tf2onnx==1.17.0',
    'onnx==1.23.2',
    'onnxruntime==1.31.1',
    'ai-edge-litert==2.3.0',
    'tensorflow-hub==0.16.1',
    'tf-keras==2.21.0',
    # metrabs.video's overlay and bench.build_stages' H.264 test video use the ffmpeg it ships.
    'imageio-ffmpeg==0.8.1',
]

setup(
    name='posepile-metrabs',
    version='0.1.0',
    description='MeTRAbs trained on many 3D pose datasets, tied together by an affine-combining autoencoder',
    python_requires='>=3.11',
    packages=find_packages(include=['posepile*', 'metrabs*', 'acae*', 'eval*', 'rehearsal*']),
    install_requires=INSTALL_REQUIRES,
    extras_require={
        'gpu': ['tensorflow[and-cuda]==2.21.0'],
        'dev': ['pytest==9.2.0', 'pytest-timeout==2.4.0', 'hypothesis==6.170.17'],
    },
)
