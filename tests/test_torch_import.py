"""import_torch_rnn: key/shape checks (NumPy only) and equality with torch (if installed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddat_jax.models import RNN, expected_rnn_shapes, import_torch_rnn


def _fake_state_dict(cell="gru", num_layers=2, bidirectional=True):
    shapes = expected_rnn_shapes(
        cell=cell, input_size=3, hidden_size=4, num_layers=num_layers, bidirectional=bidirectional
    )
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_import_is_identity_on_names_and_layout():
    sd = _fake_state_dict()
    params = import_torch_rnn(sd, cell="gru", num_layers=2, bidirectional=True)
    assert set(params) == set(sd)
    for k, v in sd.items():
        assert params[k].dtype == jnp.float32
        np.testing.assert_array_equal(params[k], v)


def test_missing_key_named():
    sd = _fake_state_dict()
    del sd["bias_hh_l1_reverse"]
    with pytest.raises(ValueError, match="bias_hh_l1_reverse"):
        import_torch_rnn(sd, cell="gru", num_layers=2, bidirectional=True)


def test_unexpected_key_named():
    sd = _fake_state_dict(num_layers=2)
    with pytest.raises(ValueError, match="weight_ih_l1"):
        import_torch_rnn(sd, cell="gru", num_layers=1, bidirectional=True)


def test_wrong_shape_named():
    sd = _fake_state_dict()
    sd["weight_ih_l1"] = sd["weight_ih_l1"][:, :5]
    with pytest.raises(ValueError, match="weight_ih_l1"):
        import_torch_rnn(sd, cell="gru", num_layers=2, bidirectional=True)


def test_wrong_cell_named():
    sd = _fake_state_dict(cell="gru")
    with pytest.raises(ValueError, match="weight_hh_l0"):
        import_torch_rnn(sd, cell="lstm", num_layers=2, bidirectional=True)


@pytest.mark.parametrize(
    "cell,num_layers,bidirectional",
    [
        ("gru", 2, True),
        ("lstm", 2, True),
        pytest.param("lstm", 1, False, marks=pytest.mark.slow),
        pytest.param("gru", 1, False, marks=pytest.mark.slow),
        pytest.param("gru", 3, False, marks=pytest.mark.slow),
        pytest.param("lstm", 3, True, marks=pytest.mark.slow),
    ],
)
def test_outputs_equal_torch(cell, num_layers, bidirectional):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cls = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    net = cls(6, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    params = import_torch_rnn(sd, cell=cell, num_layers=num_layers, bidirectional=bidirectional)
    x = np.random.default_rng(1).standard_normal((3, 17, 6)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x))[0].numpy()
    model = RNN(cell=cell, hidden_size=5, num_layers=num_layers, bidirectional=bidirectional)
    apply = jax.jit(model.apply)
    lengths = [17, 9, 2]
    mask = np.arange(17)[None, :] < np.array(lengths)[:, None]
    # Both checks in one compiled call: an all-True mask is the unpadded batch.
    y, y_masked = apply(
        {"params": params},
        np.stack([x, x]).reshape(6, 17, 6),
        mask=np.concatenate([np.ones_like(mask), mask]),
    ).reshape(2, 3, 17, -1)
    np.testing.assert_allclose(y, ref, atol=1e-5, rtol=0)

    # Padded batch against torch's packed sequences.
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        ref_packed, _ = torch.nn.utils.rnn.pad_packed_sequence(
            net(packed)[0], batch_first=True, total_length=17
        )
    np.testing.assert_allclose(y_masked, ref_packed.numpy(), atol=1e-5, rtol=0)
