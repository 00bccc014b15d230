"""Device selection logic; runs without a GPU."""

from __future__ import annotations

import pytest

from clevr_remv.devices import DeviceChoice, DeviceUnavailable, choose_device


def test_auto_prefers_optix_then_cuda_and_enables_every_gpu() -> None:
    both = {"CUDA": ["A100 #0", "A100 #1"], "OPTIX": ["A100 #0", "A100 #1"]}
    assert choose_device("auto", both) == DeviceChoice("OPTIX", ("A100 #0", "A100 #1"))
    assert choose_device("auto", {"CUDA": ["GTX 1080"]}).backend == "CUDA"
    assert choose_device("auto", {"HIP": ["RX 7900"], "ONEAPI": ["Arc"]}).backend == "HIP"
    assert choose_device("gpu", {"METAL": ["M2"]}).backend == "METAL"


def test_auto_falls_back_to_cpu_and_cpu_ignores_gpus() -> None:
    assert choose_device("auto", {}) == DeviceChoice("CPU", ())
    assert choose_device("auto", {"CUDA": []}).backend == "CPU"
    assert choose_device("cpu", {"OPTIX": ["H100"]}) == DeviceChoice("CPU", ())


def test_gpu_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailable, match="no GPU"):
        choose_device("gpu", {})
    with pytest.raises(ValueError):
        choose_device("fast", {})


def test_description_for_the_log() -> None:
    assert choose_device("auto", {}).describe() == "CPU"
    assert "OPTIX on 2 GPU(s)" in choose_device("auto", {"OPTIX": ["a", "b"]}).describe()


def test_denoiser_follows_the_device() -> None:
    from clevr_remv.devices import DenoiserChoice, choose_denoiser

    assert choose_denoiser(DeviceChoice("CPU", ())) == DenoiserChoice("OPENIMAGEDENOISE", False)
    assert choose_denoiser(DeviceChoice("OPTIX", ("H100",))) == DenoiserChoice("OPTIX", True)
    assert choose_denoiser(DeviceChoice("CUDA", ("H100",))) == DenoiserChoice("OPENIMAGEDENOISE", True)
    assert choose_denoiser(DeviceChoice("HIP", ("RX 7900",))) == DenoiserChoice("OPENIMAGEDENOISE", True)
