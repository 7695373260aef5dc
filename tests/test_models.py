"""The recurrent classifier reads each sequence at its true last step, whatever the padding."""

import numpy as np
import pytest
import torch

from clstm.config import load_config
from clstm.data.sequences import pad_sequences, split_mask
from clstm.models import RecurrentEncoder, SequenceClassifier, build_model


def _sequences(lengths, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, n_features)).astype(np.float32) for n in lengths]


def test_pad_and_split_round_trip():
    seqs = _sequences([2, 5, 3])
    x = pad_sequences(seqs)
    assert x.shape == (3, 5, 4)
    values, lengths = split_mask(x)
    assert lengths.tolist() == [2, 5, 3]
    torch.testing.assert_close(values[0, :2], torch.from_numpy(seqs[0]))
    assert torch.all(values[0, 2:] == 0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_output_does_not_depend_on_padding(cell, bidirectional):
    torch.manual_seed(0)
    model = SequenceClassifier(
        RecurrentEncoder(
            n_features=3, cell=cell, hidden_size=16, num_layers=2, bidirectional=bidirectional
        ),
        n_classes=4,
    ).eval()
    short = _sequences([4], seed=1)
    longer = _sequences([60, 35, 90], seed=2)
    with torch.no_grad():
        alone = model(pad_sequences(short))
        batched = model(pad_sequences(longer + short))[-1:]
        extra_padding = model(pad_sequences(short, max_len=200))
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(extra_padding, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_packed_and_padded_give_the_same_outputs_and_gradients(cell):
    # packing="auto" packs on CUDA and runs padded on CPU: both must compute the same model.
    x = pad_sequences(_sequences([9, 2, 30, 17], seed=3))
    results = []
    for packing in ("padded", "packed"):
        torch.manual_seed(0)
        encoder = RecurrentEncoder(
            n_features=3, cell=cell, hidden_size=8, num_layers=2, packing=packing
        )
        out = encoder(x)
        out.pow(2).sum().backward()
        results.append((out.detach(), [p.grad for p in encoder.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=0)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert RecurrentEncoder(n_features=3)._packs(x) is False  # auto on CPU: padded
    with pytest.raises(ValueError, match="packing must be"):
        RecurrentEncoder(n_features=3, packing="sometimes")


def test_read_out_is_the_last_real_step():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(n_features=3, hidden_size=8).eval()
    seqs = _sequences([3, 7])
    with torch.no_grad():
        features = encoder(pad_sequences(seqs))
        for i, seq in enumerate(seqs):
            out, _ = encoder.rnn(torch.from_numpy(seq)[None])
            torch.testing.assert_close(features[i], out[0, -1])


@pytest.mark.parametrize("per_step", [False, True])
def test_batches_without_padding_skip_the_lengths_and_compute_the_same(per_step, monkeypatch):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(n_features=3, hidden_size=8, per_step=per_step)
    full = pad_sequences(_sequences([6, 6, 6]))
    assert encoder._fills_batch(full)
    assert not encoder._fills_batch(pad_sequences(_sequences([6, 5])))
    fast = encoder(full)
    fast.pow(2).sum().backward()
    fast_grads = [p.grad.clone() for p in encoder.parameters()]
    encoder.zero_grad()
    monkeypatch.setattr(RecurrentEncoder, "_fills_batch", lambda self, x: False)
    slow = encoder(full)
    slow.pow(2).sum().backward()
    assert torch.equal(fast, slow)
    for a, p in zip(fast_grads, encoder.parameters(), strict=True):
        assert torch.equal(a, p.grad)


def test_stateful_encoder_carries_and_resets_state():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(n_features=3, hidden_size=8, stateful=True).eval()
    window = pad_sequences(_sequences([5, 5]))
    with torch.no_grad():
        first = encoder(window)
        assert encoder.state is not None
        carried = encoder(window)
        encoder.reset_state()
        assert encoder.state is None
        fresh = encoder(window)
    assert not torch.allclose(carried, first)
    torch.testing.assert_close(fresh, first)


def test_stateful_encoder_refuses_mismatched_batches():
    encoder = RecurrentEncoder(n_features=3, hidden_size=8, stateful=True)
    encoder(pad_sequences(_sequences([4, 4])))
    with pytest.raises(ValueError, match="batch size changed from 2 to 3"):
        encoder(pad_sequences(_sequences([4, 4, 4])))
    with pytest.raises(ValueError, match="equal length"):
        encoder(pad_sequences(_sequences([4, 2])))


def test_zero_length_sequence_is_an_error():
    x = pad_sequences(_sequences([3, 2]))
    x[1, :, -1] = 0
    with pytest.raises(ValueError, match="length 0"):
        RecurrentEncoder(n_features=3)(x)


def test_build_model_from_config():
    from clstm.data.sequences import SequenceBenchmark

    cfg = load_config({}, ["model.type=gru", "model.hidden_size=12", "model.bidirectional=true"])
    bench = SequenceBenchmark(scenario=None, n_features=5, n_classes=7, experience_names=["a"])
    model = build_model(cfg.model, benchmark=bench)
    assert isinstance(model.encoder.rnn, torch.nn.GRU)
    out = model(pad_sequences(_sequences([3, 6], n_features=5)))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_orthogonal_hh_initialisation_is_orthogonal_per_gate(cell):
    from clstm.models import init_orthogonal_hh

    encoder = RecurrentEncoder(n_features=3, cell=cell, hidden_size=6, num_layers=2)
    init_orthogonal_hh(encoder.rnn)
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    for layer in range(2):
        weight = getattr(encoder.rnn, f"weight_hh_l{layer}").detach()
        for block in weight.chunk(gates, dim=0):
            torch.testing.assert_close(block @ block.T, torch.eye(6), atol=1e-5, rtol=0)


def test_elman_output_layer_is_a_tanh_layer_on_each_hidden_state_not_fed_back():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(
        n_features=3, cell="rnn", hidden_size=5, per_step=True, elman_output=True
    ).eval()
    x = pad_sequences(_sequences([4, 7], seed=4))
    values, _ = split_mask(x)
    with torch.no_grad():
        hidden, _ = encoder.rnn(values)  # the recurrence alone: h_t does not see y_{t-1}
        expected = torch.tanh(hidden @ encoder.elman.weight.T + encoder.elman.bias)
        got = encoder(x)
        alone = encoder(pad_sequences(_sequences([4, 7], seed=4)[:1]))
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got[0, :4], alone[0], atol=1e-6, rtol=0)  # padding-invariant
    bound = 1 / 5**0.5  # their W_ho / b_ho start uniform in [-1/sqrt(H), 1/sqrt(H)]
    assert encoder.elman.weight.abs().max() <= bound and encoder.elman.bias.abs().max() <= bound


def test_elman_output_counts_its_parameters_and_needs_a_plain_rnn():
    from clstm.config import ConfigError
    from clstm.data.sequences import SequenceBenchmark
    from clstm.models import parameter_count

    cfg = load_config({}, ["model.type=rnn", "model.hidden_size=12", "model.elman_output=true"])
    bench = SequenceBenchmark(scenario=None, n_features=5, n_classes=7, experience_names=["a"])
    model = build_model(cfg.model, benchmark=bench)
    assert model.encoder.elman is not None
    assert parameter_count(cfg.model, bench) == sum(p.numel() for p in model.parameters())
    for bad in (["model.type=lstm"], ["model.type=rnn", "model.num_layers=2"]):
        with pytest.raises(ConfigError, match="elman_output needs"):
            load_config({}, [*bad, "model.elman_output=true"])


@pytest.mark.parametrize("multitask", [False, True])
def test_dropout_applies_in_training_only_and_p0_draws_nothing(multitask):
    from clstm.models.multitask import MultiTaskSequenceClassifier

    def build(p):
        torch.manual_seed(0)
        encoder = RecurrentEncoder(n_features=3, hidden_size=16)
        if multitask:  # the shared encoder's features, which every task's head reads
            model = MultiTaskSequenceClassifier(encoder, dropout=p)
            return lambda x: model.features(x, 0), model
        model = SequenceClassifier(encoder, 4, dropout=p)
        return model, model

    x = torch.cat([torch.randn(8, 5, 3), torch.ones(8, 5, 1)], dim=-1)
    (plain, _), (dropped, module) = build(0.0), build(0.5)
    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = plain(x)
    assert torch.equal(torch.get_rng_state(), state)  # p = 0 draws no random numbers
    assert torch.equal(plain(x), first)
    module.train()
    assert not torch.equal(dropped(x), dropped(x))  # a fresh mask per call
    module.eval()
    assert torch.equal(dropped(x), dropped(x))
