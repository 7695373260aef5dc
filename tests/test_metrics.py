"""The metric formulas, checked on hand-computed matrices."""

import numpy as np
import pytest

from clstm import metrics as m

# R[i, j]: accuracy on experience j after training on experiences 0..i.
# Experience 0 improves while learning 1 (0.6 -> 0.9), then drops to 0.5: the two definitions of
# forgetting disagree on it (best earlier 0.9 vs right-after-learning 0.6).
R = np.array(
    [
        [0.6, 0.2, 0.1],
        [0.9, 0.8, 0.3],
        [0.5, 0.7, 0.95],
    ]
)
B = np.array([0.1, 0.25, 0.2])


def test_average_and_learning_accuracy():
    assert m.average_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert m.learning_accuracy(R) == pytest.approx((0.6 + 0.8 + 0.95) / 3)


def test_backward_transfer():
    # ((0.5 - 0.6) + (0.7 - 0.8)) / 2
    assert m.backward_transfer(R) == pytest.approx(-0.1)
    np.testing.assert_allclose(m.backward_transfer_per_experience(R), [-0.1, -0.1])


def test_forward_transfer_against_initial_row():
    # ((R[0,1] - b1) + (R[1,2] - b2)) / 2 = ((0.2 - 0.25) + (0.3 - 0.2)) / 2
    assert m.forward_transfer(R, B) == pytest.approx(0.025)
    np.testing.assert_allclose(m.forward_transfer_per_experience(R, B), [-0.05, 0.1])


def test_forgetting_best_earlier_minus_final():
    # j=0: max(0.6, 0.9) - 0.5 = 0.4 ; j=1: 0.8 - 0.7 = 0.1
    np.testing.assert_allclose(m.forgetting_per_experience(R), [0.4, 0.1])
    assert m.forgetting(R) == pytest.approx(0.25)


def test_forgetting_right_after_learning_minus_final_is_minus_bwt():
    # j=0: 0.6 - 0.5 = 0.1 ; j=1: 0.8 - 0.7 = 0.1
    np.testing.assert_allclose(m.forgetting_learned_per_experience(R), [0.1, 0.1])
    assert m.forgetting_learned(R) == pytest.approx(0.1)
    assert m.forgetting_learned(R) == pytest.approx(-m.backward_transfer(R))


def test_forgetting_ignores_accuracy_before_an_experience_was_learnt():
    # Experience 1 scores 0.99 before it is learnt (row 0); that must not count as "best earlier".
    R2 = np.array([[0.9, 0.99], [0.4, 0.8]])
    assert m.forgetting(R2) == pytest.approx(0.5)


def test_single_experience_has_no_transfer_or_forgetting():
    one = np.array([[0.7]])
    assert m.average_accuracy(one) == pytest.approx(0.7)
    assert m.backward_transfer(one) is None
    assert m.forward_transfer(one, [0.1]) is None
    assert m.forgetting(one) is None
    assert m.forgetting_learned(one) is None


def test_summarize_aligns_per_experience_values_with_experiences():
    s = m.summarize(R, B)
    assert s["acc"] == pytest.approx(m.average_accuracy(R))
    assert s["per_experience"]["forgetting"] == pytest.approx([0.4, 0.1, None])
    assert s["per_experience"]["fwt"][0] is None
    assert s["per_experience"]["fwt"][1:] == pytest.approx([-0.05, 0.1])
    assert m.summarize(R)["fwt"] is None


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros((0, 0)), np.zeros(3)])
def test_non_square_matrix_is_rejected(bad):
    with pytest.raises(ValueError, match="square"):
        m.average_accuracy(bad)


def test_initial_row_must_match():
    with pytest.raises(ValueError, match="initial row"):
        m.forward_transfer(R, [0.1, 0.2])


def test_error_summaries_on_a_hand_computed_matrix():
    from clstm import metrics as clm

    E = np.array([[1.0, 5.0, 6.0], [3.0, 0.5, 7.0], [2.0, 1.5, 0.2]])  # MSE, lower is better
    b = np.array([4.0, 6.0, 8.0])
    assert clm.average_error(E) == pytest.approx((2.0 + 1.5 + 0.2) / 3)
    assert clm.learning_error(E) == pytest.approx((1.0 + 0.5 + 0.2) / 3)
    # final minus right-after-learning: 2 - 1 = 1 (grew), 1.5 - 0.5 = 1
    np.testing.assert_allclose(clm.error_increase_per_experience(E), [1.0, 1.0])
    # final minus best once learnt: exp 0 best min(1, 3) = 1 -> 1; exp 1 best 0.5 -> 1
    np.testing.assert_allclose(clm.error_forgetting_per_experience(E), [1.0, 1.0])
    E2 = np.array([[3.0, 9.0, 9.0], [1.0, 2.0, 9.0], [2.5, 2.0, 1.0]])  # exp 0 improved later
    np.testing.assert_allclose(clm.error_increase_per_experience(E2), [-0.5, 0.0])
    np.testing.assert_allclose(clm.error_forgetting_per_experience(E2), [1.5, 0.0])
    # before learning j minus untrained: 5 - 6 = -1 (lowered: transfer), 7 - 8 = -1
    np.testing.assert_allclose(clm.forward_error_change_per_experience(E, b), [-1.0, -1.0])
    s = clm.summarize_errors(E, b)
    assert s["error_increase"] == pytest.approx(1.0) and s["forward_error_change"] == -1.0
    assert s["per_experience"]["error_forgetting"] == [1.0, 1.0, None]
    assert clm.summarize_errors(np.array([[0.3]]))["error_increase"] is None
