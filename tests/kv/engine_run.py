"""Runs vLLM on the tiny model once, as the KV-tier tests ask; prints JSON.

Run with the KV venv's python, in a process of its own (vLLM starts an
engine-core process and keeps global state), with this directory on
PYTHONPATH (for cpu_offload_spec):

    engine_run.py SPEC.json OUT.json

SPEC: {"model": DIR, "extra_config": {...} (kv_connector_extra_config of
the OffloadingConnector; null: no connector), "prompt_len": N,
"max_tokens": N, "steps": ["gen", "reset", "gen", ...]}. "gen" generates
greedily from the prompt; "reset" empties vLLM's prefix cache and the
host tier, not the secondary tiers. OUT gets one entry per "gen": the
generated token ids, their logprobs, num_cached_tokens, and a snapshot of
the offloading and swapio metrics taken after it.
"""

import json
import os
import sys

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tiny_model  # noqa: E402


def metrics(llm):
    """{name{label=value,...}: value} of the offloading and swapio metrics."""
    out = {}
    for m in llm.get_metrics():
        if "kv_offload" not in m.name and "swapio" not in m.name:
            continue
        value = getattr(m, "value", None)
        if value is None:
            value = getattr(m, "count", None)
        if value is None:
            continue
        labels = {k: v for k, v in m.labels.items()
                  if k not in ("engine", "model_name")}
        name = m.name
        if labels:
            name += "{" + ",".join(f"{k}={v}"
                                   for k, v in sorted(labels.items())) + "}"
        out[name] = out.get(name, 0) + value
    return out


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    from vllm import LLM, SamplingParams

    kw = {}
    if spec.get("extra_config") is not None:
        kw["kv_transfer_config"] = {
            "kv_connector": "OffloadingConnector",
            "kv_role": "kv_both",
            "kv_connector_extra_config": spec["extra_config"],
        }
    llm = LLM(model=spec["model"], dtype="float32", max_model_len=2048,
              enforce_eager=True, enable_prefix_caching=True,
              disable_log_stats=False, seed=0, **kw)
    params = SamplingParams(temperature=0.0, max_tokens=spec["max_tokens"],
                            logprobs=1, ignore_eos=True)
    prompt = {"prompt_token_ids": tiny_model.prompt_ids(spec["prompt_len"])}
    results = []
    for step in spec["steps"]:
        if step == "reset":
            if not llm.reset_prefix_cache(reset_connector=True):
                raise RuntimeError("reset_prefix_cache failed")
            continue
        out = llm.generate([prompt], params, use_tqdm=False)[0]
        c = out.outputs[0]
        lps = [lp[tok].logprob for tok, lp in zip(c.token_ids, c.logprobs)]
        results.append({"tokens": list(c.token_ids), "logprobs": lps,
                        "num_cached_tokens": out.num_cached_tokens,
                        "metrics": metrics(llm)})
    with open(sys.argv[2], "w") as f:
        json.dump(results, f, indent=1)
    del llm


if __name__ == "__main__":
    main()
