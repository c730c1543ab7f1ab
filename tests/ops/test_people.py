"""bgkit.ops.people: connected components and "only the main person"."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bgkit.ops.people import connected_components, keep_only, main_person


def _flood_fill_partition(mask: np.ndarray) -> set[frozenset]:
    """Reference: 4-connected components by breadth-first search, as sets of pixel indices."""
    h, w = mask.shape
    seen = np.zeros_like(mask, bool)
    parts = set()
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        todo, part = deque([(y0, x0)]), []
        seen[y0, x0] = True
        while todo:
            y, x = todo.popleft()
            part.append(y * w + x)
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    todo.append((ny, nx))
        parts.add(frozenset(part))
    return parts


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_components_are_the_flood_fill_partition(mask: np.ndarray) -> None:
    labels, n = connected_components(mask)
    assert labels.dtype == np.int32 and labels.shape == mask.shape
    np.testing.assert_array_equal(labels > 0, mask)
    assert sorted(np.unique(labels[mask]).tolist()) == list(range(1, n + 1))
    mine = {frozenset(np.flatnonzero(labels == k).tolist()) for k in range(1, n + 1)}
    assert mine == _flood_fill_partition(mask)


def test_diagonal_neighbours_are_separate_people() -> None:
    labels, n = connected_components(np.eye(4, dtype=bool))
    assert n == 4


def _scene() -> torch.Tensor:
    """A big person on the left, a smaller one right of the centre, and a speck at the centre,
    which must never count as "the person in the centre"."""
    m = torch.zeros(120, 200, dtype=torch.bool)
    m[10:120, 5:80] = True  # big, left
    m[40:120, 120:150] = True  # smaller, right of centre
    m[58:61, 99:102] = True  # a 3x3 speck at the centre
    return m


def test_largest_and_centre() -> None:
    m = _scene()
    largest = main_person(m, "largest")
    assert torch.equal(largest, m & (torch.arange(200) < 80))
    centre = main_person(m, "centre")
    assert torch.equal(centre, m & (torch.arange(200) >= 120))


def test_instances_from_the_model_win_over_components() -> None:
    m = torch.ones(10, 10, dtype=torch.bool)  # two people touching: one component
    left = np.zeros((10, 10), bool)
    left[:, :4] = True
    right = ~left
    assert main_person(m, "largest", [left, right]).sum() == right.sum()
    assert main_person(m, "largest").all()


def test_empty_mask_and_bad_choice() -> None:
    empty = torch.zeros(8, 8, dtype=torch.bool)
    assert not main_person(empty, "centre").any()
    with pytest.raises(ValueError, match="'largest' or 'centre'"):
        main_person(empty, "biggest")


def test_big_masks_are_labelled_on_a_small_copy() -> None:
    m = torch.zeros(1000, 1500, dtype=torch.bool)
    m[100:900, 50:600] = True
    m[300:900, 900:1100] = True
    keep = main_person(m, "largest")
    assert keep.shape == m.shape
    assert torch.equal(keep, m & (torch.arange(1500) < 700))


def test_keep_only_keeps_the_soft_edge_of_the_chosen_person() -> None:
    person = torch.zeros(20, 20, dtype=torch.bool)
    person[5:15, 5:10] = True
    mask = person.clone()
    mask[5:15, 14:18] = True
    alpha = torch.full((20, 20), 0.5)
    m, a = keep_only(person, mask, alpha, softness=1.0)
    assert torch.equal(m, person)
    assert a[10, 4] == 0.5 and a[10, 10] == 0.5  # one pixel around the person keeps its alpha
    assert a[10, 15] == 0 and a[0, 0] == 0
