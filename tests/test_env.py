"""The harvest as a Gymnasium environment (issue 22, deliverable 5, first part): it passes
Gymnasium's own checker, is reproducible from its seed, observes only a desk's view, and the
rewards add up to the firm's P&L over the episode."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from abm.env import HarvestEnv

ONE_SIDED = {"retail.long_share": 0.9}


def test_gymnasiums_checker_passes():
    check_env(HarvestEnv("small", ONE_SIDED), skip_render_check=True)


def _episode(env: HarvestEnv, seed: int, action: float):
    obs, _ = env.reset(seed=seed)
    start = env._equity
    seen, rewards = [obs], []
    while True:
        obs, r, terminated, truncated, _ = env.step(np.array([action], np.float32))
        seen.append(obs)
        rewards.append(r)
        if terminated or truncated:
            return np.array(seen), np.array(rewards), start


def test_the_same_seed_gives_the_same_episode():
    a = _episode(HarvestEnv("small", ONE_SIDED), 3, 0.2)
    b = _episode(HarvestEnv("small", ONE_SIDED), 3, 0.2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = _episode(HarvestEnv("small", ONE_SIDED), 4, 0.2)
    assert not np.array_equal(a[0][0], c[0][0])  # another seed, another run


def test_rewards_add_up_to_the_firms_pnl_and_the_action_sets_the_discount():
    env = HarvestEnv("small", ONE_SIDED, max_discount=20.0, reward_scale=1.0)
    _, rewards, start = _episode(env, 3, 0.25)  # a 5-unit discount
    model = env.model
    acc = model.hedgers[0].account
    end = acc.equity(model.exchange.mark, model.exchange.contract.multiplier)
    assert rewards.sum() == pytest.approx(end - start, rel=1e-9, abs=1e-6)
    s = model.result.summary
    tick = model.exchange.contract.tick_size
    # the last forced lot cleared at the firm's quote, within a tick of its discount (the
    # quote is on the tick grid) unless the band stopped it short
    assert s["harvest_discount"] <= 5.0 + tick + 1e-9
    assert s["harvest_discount"] >= min(5.0, s["theory_divergence"]) - tick - 1e-9


def test_the_observation_is_a_desks_view():
    env = HarvestEnv("small", ONE_SIDED, depth=3)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (5 + 2 * 3,) and len(env.observation_names) == obs.size
    view = env._policy.view
    assert view is not None
    # the side, the lots as the firm estimates them, its own position, no rival's
    assert obs[0] == view.side and obs[1] == view.q
    assert obs[2] == env.model.hedgers[0].account.net
    # the visible levels are the book's first three competing levels, as discounts
    for k, (tick, lots) in enumerate(view.ladder[:3]):
        assert obs[5 + 2 * k] == pytest.approx(view.discount(tick)) and obs[6 + 2 * k] == lots


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="depth = 0"):
        HarvestEnv("small", depth=0)
    with pytest.raises(ValueError, match="max_discount"):
        HarvestEnv("small", max_discount=0)
    with pytest.raises(ValueError, match="hedger.n_firms = 3"):
        HarvestEnv("small", {"n_firms": 3})


# -- several firms: PettingZoo's parallel API --------------------------------------------------


def test_pettingzoos_parallel_api_test_passes():
    from pettingzoo.test import parallel_api_test

    from abm.env import HarvestParallelEnv

    parallel_api_test(HarvestParallelEnv("small", {**ONE_SIDED, "n_firms": 2}), num_cycles=200)


def _parallel_episode(env, seed: int, actions: dict[str, float]):
    obs, _ = env.reset(seed=seed)
    start = dict(env._equity)
    seen, totals = [obs], dict.fromkeys(env.possible_agents, 0.0)
    while env.agents:
        obs, rew, term, trunc, _ = env.step(
            {a: np.array([actions[a]], np.float32) for a in env.agents}
        )
        seen.append(obs)
        for a, r in rew.items():
            totals[a] += r
    return seen, totals, start


def test_each_firm_is_rewarded_its_own_pnl_and_sees_only_its_own_position():
    from abm.env import HarvestParallelEnv

    env = HarvestParallelEnv("small", {**ONE_SIDED, "n_firms": 2}, reward_scale=1.0)
    seen, totals, start = _parallel_episode(env, 5, {"firm_0": 0.2, "firm_1": 0.5})
    m = env.model
    ex = m.exchange
    for i, agent in enumerate(env.possible_agents):
        end = m.hedgers[i].account.equity(ex.mark, ex.contract.multiplier)
        assert totals[agent] == pytest.approx(end - start[agent], rel=1e-9, abs=1e-6)
    # the two firms chose different discounts, so they saw and earned different things
    assert totals["firm_0"] != totals["firm_1"]
    # right after a decision each firm's observation holds its own position, not a rival's
    obs, _ = env.reset(seed=5)
    for i, agent in enumerate(env.possible_agents):
        assert obs[agent][2] == env.model.hedgers[i].account.net
        assert obs[agent].shape == env.observation_space(agent).shape
    # the same seed gives the same episode
    again, totals2, _ = _parallel_episode(
        HarvestParallelEnv("small", {**ONE_SIDED, "n_firms": 2}, reward_scale=1.0),
        5,
        {"firm_0": 0.2, "firm_1": 0.5},
    )
    assert totals2 == totals
    for a, b in zip(seen, again, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
