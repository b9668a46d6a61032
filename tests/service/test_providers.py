from __future__ import annotations

import os

import onnxruntime as ort
import pytest

from model.cpus import available_cpus
from service.inference.providers import (
    CPU,
    ProviderError,
    create_session,
    plan_providers,
    select_providers,
    session_options,
)
from service.plumbing.settings import Settings

CPU_ONLY = "CUDAExecutionProvider" not in ort.get_available_providers()


def settings(tmp_path, **values) -> Settings:
    return Settings(models_dir=tmp_path, **values)


def test_auto_picks_cpu_on_a_cpu_only_build(tmp_path):
    plan = select_providers(settings(tmp_path))
    assert not plan.explicit
    assert plan.names[-1] == CPU
    if CPU_ONLY:
        assert plan.names == [CPU]


@pytest.mark.skipif(not CPU_ONLY, reason="needs the CPU-only onnxruntime build")
@pytest.mark.parametrize("device", ["cuda", "tensorrt", "tensorrt,cuda,cpu"])
def test_explicit_unavailable_provider_is_a_startup_error_with_the_reason(tmp_path, device):
    with pytest.raises(ProviderError) as info:
        select_providers(settings(tmp_path, device=device))
    message = str(info.value)
    assert "not available in this onnxruntime build" in message
    assert "CPUExecutionProvider" in message.partition("(available: ")[2]
    assert "onnxruntime-gpu" in message


def test_explicit_cpu_session_reports_the_providers_it_got(tmp_path, model_repo):
    plan = plan_providers(settings(tmp_path, device="cpu"))
    session = create_session(model_repo["rgb"].onnx_path, settings(tmp_path), plan)
    assert session.get_providers() == [CPU]


def test_cuda_options_come_from_settings(tmp_path):
    s = settings(
        tmp_path, cuda_device_id=1, cuda_mem_limit_bytes=2**30, cudnn_conv_algo_search="exhaustive"
    )
    from service.inference.providers import _provider_options

    options = _provider_options("CUDAExecutionProvider", s)
    assert options["device_id"] == "1"
    assert options["gpu_mem_limit"] == str(2**30)
    assert options["cudnn_conv_algo_search"] == "EXHAUSTIVE"


def test_threads_default_to_the_cores_available(tmp_path):
    assert available_cpus() <= len(os.sched_getaffinity(0))
    options = session_options(settings(tmp_path))
    assert options.intra_op_num_threads == available_cpus()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spinning = session_options(settings(tmp_path, intra_op_threads=3, allow_spinning=True))
    assert spinning.intra_op_num_threads == 3
    assert spinning.get_session_config_entry("session.intra_op.allow_spinning") == "1"
