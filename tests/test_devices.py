"""Device selection logic; runs without a GPU."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clevr_remv.gpu.devices import DeviceChoice, DeviceUnavailable, choose_device


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
    with pytest.raises(ValueError, match="^device must be one of auto, cpu, gpu, .*, got 'fast'$"):
        choose_device("fast", {})


def test_a_named_backend_is_taken_even_where_a_better_one_exists() -> None:
    both = {"OPTIX": ["H100"], "CUDA": ["H100"]}
    assert choose_device("cuda", both) == DeviceChoice("CUDA", ("H100",))
    assert choose_device("optix", both) == DeviceChoice("OPTIX", ("H100",))
    assert choose_device("hip", {"HIP": ["RX 7900"]}).backend == "HIP"


def test_a_named_backend_that_is_missing_says_what_cycles_found() -> None:
    with pytest.raises(DeviceUnavailable, match=r"no OPTIX device \(it found CUDA \(1\)\)"):
        choose_device("optix", {"CUDA": ["GTX 1080"]})
    with pytest.raises(DeviceUnavailable, match=r"no CUDA device \(it found no GPU\)"):
        choose_device("cuda", {})


def test_description_for_the_log() -> None:
    assert choose_device("auto", {}).describe() == "CPU"
    assert "OPTIX on 2 GPU(s)" in choose_device("auto", {"OPTIX": ["a", "b"]}).describe()


def test_denoiser_follows_the_device() -> None:
    from clevr_remv.gpu.devices import DenoiserChoice, choose_denoiser

    assert choose_denoiser(DeviceChoice("CPU", ())) == DenoiserChoice("OPENIMAGEDENOISE", False)
    assert choose_denoiser(DeviceChoice("OPTIX", ("H100",))) == DenoiserChoice("OPTIX", True)
    assert choose_denoiser(DeviceChoice("CUDA", ("H100",))) == DenoiserChoice("OPENIMAGEDENOISE", True)
    assert choose_denoiser(DeviceChoice("HIP", ("RX 7900",))) == DenoiserChoice("OPENIMAGEDENOISE", True)


# ------------------------------------------------------------- workers pinned to GPUs

from clevr_remv.gpu.devices import WorkerDevice, parse_gpus, plan_workers, split_threads  # noqa: E402

CPU = DeviceChoice("CPU", ())
TWO_OPTIX = choose_device("auto", {"OPTIX": ["A100", "A100"], "CUDA": ["A100", "A100"]})
FOUR_HIP = choose_device("auto", {"HIP": ["RX 7900 #0", "RX 7900 #1", "RX 7900 #2", "RX 7900 #3"]})


def gpus_of(plan: list[WorkerDevice]) -> list[int | None]:
    assert [w.worker for w in plan] == list(range(len(plan)))
    return [w.gpu_index for w in plan]


def test_one_worker_per_gpu_by_default_and_k_per_gpu_when_asked() -> None:
    assert gpus_of(plan_workers(TWO_OPTIX, None, None)) == [0, 1]
    assert gpus_of(plan_workers(FOUR_HIP, None, None)) == [0, 1, 2, 3]
    assert gpus_of(plan_workers(TWO_OPTIX, None, None, workers_per_gpu=3)) == [0, 1, 0, 1, 0, 1]


def test_listed_gpus_pin_workers_round_robin() -> None:
    assert gpus_of(plan_workers(FOUR_HIP, "0,2", None)) == [0, 2]
    assert gpus_of(plan_workers(FOUR_HIP, "3", None, workers_per_gpu=2)) == [3, 3]
    assert gpus_of(plan_workers(FOUR_HIP, "all", None)) == [0, 1, 2, 3]
    assert gpus_of(plan_workers(FOUR_HIP, "1,2", 5)) == [1, 2, 1, 2, 1]  # --workers wins over the default


def test_cpu_workers_are_not_pinned_and_one_explicit_worker_keeps_every_gpu() -> None:
    assert gpus_of(plan_workers(CPU, None, None)) == [None]
    assert gpus_of(plan_workers(CPU, None, 3)) == [None, None, None]
    assert gpus_of(plan_workers(TWO_OPTIX, None, 1)) == [None]  # Cycles splits frames over both
    assert gpus_of(plan_workers(TWO_OPTIX, None, 4)) == [0, 1, 0, 1]


@settings(max_examples=100, deadline=None)
@given(workers=st.integers(1, 64), cores=st.integers(1, 256))
def test_cpu_threads_are_shared_out_without_oversubscribing(workers: int, cores: int) -> None:
    shares = split_threads(workers, cores)
    assert len(shares) == workers and min(shares) >= 1
    assert max(shares) - min(shares) <= 1
    assert sum(shares) == max(cores, workers)  # every core used; one thread each when cores run short


def test_several_cpu_workers_get_the_cores_and_gpu_workers_no_thread_cap() -> None:
    assert [w.threads for w in plan_workers(CPU, None, 3, cores=8)] == [3, 3, 2]
    assert [w.threads for w in plan_workers(CPU, None, None, cores=8)] == [None]  # one process: Cycles decides
    assert [w.threads for w in plan_workers(TWO_OPTIX, None, None, cores=8)] == [None, None]


def test_bad_gpu_lists_are_clear_errors() -> None:
    with pytest.raises(DeviceUnavailable, match="found no GPU"):
        plan_workers(CPU, "0", None)
    with pytest.raises(DeviceUnavailable, match="no GPU 2; Cycles lists 2 OPTIX GPU\\(s\\): 0 A100, 1 A100"):
        parse_gpus("0,2", TWO_OPTIX)
    for bad, says in {"zero": "--gpus must be 'all' or GPU numbers such as 0,2, got 'zero'",
                      "1;2": "--gpus must be 'all' or GPU numbers such as 0,2, got '1;2'",
                      "0,0": "--gpus '0,0': name each GPU once, e.g. 0,2",
                      ",": "--gpus ',': name each GPU once, e.g. 0,2"}.items():
        with pytest.raises(ValueError) as refused:
            parse_gpus(bad, TWO_OPTIX)
        assert str(refused.value) == says
    with pytest.raises(ValueError, match="--workers must be positive"):
        plan_workers(CPU, None, 0)
    with pytest.raises(ValueError, match="--workers-per-gpu"):
        plan_workers(TWO_OPTIX, None, None, workers_per_gpu=0)


def test_a_pinned_worker_enables_only_its_gpu_and_the_log_names_it() -> None:
    pinned = TWO_OPTIX.pinned(1)
    assert pinned.indices == (1,) and pinned.devices == ("A100",) and pinned.backend == "OPTIX"
    assert TWO_OPTIX.pinned(None) is TWO_OPTIX and TWO_OPTIX.indices is None
    with pytest.raises(DeviceUnavailable):
        TWO_OPTIX.pinned(2)
    assert WorkerDevice(3, 1).describe(FOUR_HIP) == "worker 3: HIP GPU 1 (RX 7900 #1)"
    assert WorkerDevice(0).describe(CPU) == "worker 0: CPU"
