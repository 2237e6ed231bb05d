"""The in-memory world being built: accounts, posts and follows as column batches
addressed by global integer indices, turned into contract tables (string ids,
timestamps, lists) once at the end.

Generators append batches (`add_accounts`, `add_posts`, `add_follows`) and refer to
each other's rows by index; platform ids are only drawn in `tables()`, from random
permutations, so nothing about an id betrays who made the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cibwatch.synth.rhythms import Calendar

PLATFORMS = ("facebook", "instagram", "x", "youtube", "reddit", "tiktok")
P = {name: i for i, name in enumerate(PLATFORMS)}
KINDS = ("post", "comment", "reply", "share", "reaction")
K = {name: i for i, name in enumerate(KINDS)}
ENGAGEMENT_KINDS = (K["comment"], K["reply"], K["share"], K["reaction"])

# Id shapes per platform: (prefix, digits). Zero-padded ids keep leading zeros, which a
# reader that parses ids as numbers would lose (SCHEMA.md: ids are strings).
ACCOUNT_IDS = {"facebook": ("1000", 11), "instagram": ("", 10), "x": ("", 18),
               "youtube": ("UC", 22), "reddit": ("t2_", 8), "tiktok": ("", 12)}
POST_IDS = {"facebook": ("", 16), "instagram": ("", 19), "x": ("", 19),
            "youtube": ("yt", 11), "reddit": ("t3_", 9), "tiktok": ("", 19)}

_STR_COLS = ("handle", "display_name", "bio", "avatar_hash", "claimed_location", "lang")
_POST_STR = ("text", "title", "urls", "hashtags", "media_hashes", "lang")


def _strings(value, n: int) -> pa.Array:
    """A string column of length n from None, a scalar, a numpy array or an Arrow array."""
    if value is None:
        return pa.nulls(n, pa.string())
    if isinstance(value, str):
        return pa.array(np.full(n, value, dtype=object), pa.string())
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        return value.cast(pa.string())
    return pa.array(np.asarray(value, dtype=object), pa.string())


def _ints(value, n: int, dtype=np.int64) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    return np.full(n, arr, dtype=dtype) if arr.ndim == 0 else arr


@dataclass
class World:
    """Growing arrays of the world, plus labels and hard-negative groups by index."""

    rng: np.random.Generator
    cal: Calendar
    scale: float
    seed: int
    acc: dict[str, list] = field(default_factory=dict)
    posts: dict[str, list] = field(default_factory=dict)
    follows: dict[str, list] = field(default_factory=dict)
    labels: list[tuple[np.ndarray, str, str]] = field(default_factory=list)
    negatives: list[tuple[np.ndarray, str]] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    # Numeric mirrors kept concatenated for lookups while generating.
    acc_platform: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    acc_type: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    acc_created: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    acc_lang: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    # Post mirrors live in buffers with doubling capacity (amortised appends);
    # `post_author` etc. are views of the filled part.
    _post: dict[str, np.ndarray] = field(default_factory=lambda: {
        "author": np.empty(1024, np.int64), "ts": np.empty(1024, np.int64),
        "kind": np.empty(1024, np.int8), "target": np.empty(1024, np.int64)})
    _n_posts: int = 0

    @property
    def post_author(self) -> np.ndarray:
        return self._post["author"][: self._n_posts]

    @property
    def post_ts(self) -> np.ndarray:
        return self._post["ts"][: self._n_posts]

    @property
    def post_kind(self) -> np.ndarray:
        return self._post["kind"][: self._n_posts]

    @property
    def post_target(self) -> np.ndarray:
        return self._post["target"][: self._n_posts]

    def _append_posts(self, **cols: np.ndarray) -> None:
        n = len(cols["author"])
        need = self._n_posts + n
        for name, values in cols.items():
            buf = self._post[name]
            if need > len(buf):
                bigger = np.empty(max(need, 2 * len(buf)), buf.dtype)
                bigger[: self._n_posts] = buf[: self._n_posts]
                self._post[name] = buf = bigger
            buf[self._n_posts : need] = values
        self._n_posts = need

    @property
    def n_accounts(self) -> int:
        return len(self.acc_platform)

    @property
    def n_posts(self) -> int:
        return self._n_posts

    def add_accounts(
        self,
        platform,
        created_at,
        asset_type="account",
        *,
        handle=None,
        display_name=None,
        bio=None,
        avatar_hash=None,
        claimed_location=None,
        lang=None,
        followers_extra=0,
    ) -> np.ndarray:
        """Append accounts; returns their global indices."""
        created_at = np.asarray(created_at, dtype=np.int64)
        n = len(created_at)
        plat = _ints(platform, n, np.int8)
        start = self.n_accounts
        cols = {"platform": plat, "created_at": created_at,
                "asset_type": _strings(asset_type, n),
                "followers_extra": _ints(followers_extra, n)}
        values = dict(handle=handle, display_name=display_name, bio=bio,
                      avatar_hash=avatar_hash, claimed_location=claimed_location, lang=lang)
        for name in _STR_COLS:
            cols[name] = _strings(values[name], n)
        for name, col in cols.items():
            self.acc.setdefault(name, []).append(col)
        self.acc_platform = np.concatenate([self.acc_platform, plat])
        self.acc_type = np.concatenate(
            [self.acc_type, np.asarray(cols["asset_type"].to_pylist(), dtype=object)]
        )
        self.acc_created = np.concatenate([self.acc_created, created_at])
        self.acc_lang = np.concatenate(
            [self.acc_lang, np.asarray(cols["lang"].to_pylist(), dtype=object)]
        )
        return np.arange(start, start + n)

    def add_posts(
        self,
        author,
        ts,
        kind="post",
        *,
        text=None,
        title=None,
        urls=None,
        hashtags=None,
        media_hashes=None,
        target=None,
        lang=None,
    ) -> np.ndarray:
        """Append posts (any kind). `target` is the post index a comment/reply/reaction
        answers or a share re-shares (-1: none). List columns are space-joined strings."""
        author = np.asarray(author, dtype=np.int64)
        n = len(author)
        ts = _ints(ts, n)
        if len(ts) != n:
            raise ValueError(f"{n} authors but {len(ts)} times")
        # Last line of defence: nobody posts before their account exists.
        ts = np.clip(np.maximum(ts, self.acc_created[author] + 60), self.cal.start,
                     self.cal.end - 1)
        kind_codes = _ints(K[kind] if isinstance(kind, str) else kind, n, np.int8)
        tgt = _ints(-1 if target is None else target, n)
        if lang is None:
            lang = self.acc_lang[author]
        start = self.n_posts
        cols = {"author": author, "ts": ts, "kind": kind_codes, "target": tgt}
        values = dict(text=text, title=title, urls=urls, hashtags=hashtags,
                      media_hashes=media_hashes, lang=lang)
        for name in _POST_STR:
            cols[name] = _strings(values[name], n)
        for name, col in cols.items():
            self.posts.setdefault(name, []).append(col)
        self._append_posts(author=author, ts=ts, kind=kind_codes, target=tgt)
        return np.arange(start, start + n)

    def add_follows(self, follower, followee, ts) -> None:
        follower = np.asarray(follower, dtype=np.int64)
        n = len(follower)
        self.follows.setdefault("follower", []).append(follower)
        followee = _ints(followee, n)
        self.follows.setdefault("followee", []).append(followee)
        # Nobody follows, or is followed, before the account exists.
        lo = np.maximum(self.acc_created[follower], self.acc_created[followee]) + 60
        self.follows.setdefault("ts", []).append(
            np.clip(np.maximum(_ints(ts, n), lo), None, self.cal.end - 1)
        )

    def label(self, idx: np.ndarray, operation: str, role: str = "operator") -> None:
        self.labels.append((np.asarray(idx, dtype=np.int64), operation, role))

    def negative(self, idx: np.ndarray, group: str) -> None:
        self.negatives.append((np.asarray(idx, dtype=np.int64), group))

    # ------------------------------------------------------------------ finishing
    def follow_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(follower, followee, ts) with duplicate and self follows removed (cached until
        the next `add_follows`)."""
        key = len(self.follows.get("follower", []))
        cached = self.info.get("_follow_arrays")
        if cached is not None and cached[0] == key:
            return cached[1]
        result = self._follow_arrays()
        self.info["_follow_arrays"] = (key, result)
        return result

    def _follow_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.follows:
            e = np.empty(0, np.int64)
            return e, e, e
        a = np.concatenate(self.follows["follower"])
        b = np.concatenate(self.follows["followee"])
        t = np.concatenate(self.follows["ts"])
        keep = (a != b) & (self.acc_platform[a] == self.acc_platform[b])
        a, b, t = a[keep], b[keep], t[keep]
        _, first = np.unique(a * (self.n_accounts + 1) + b, return_index=True)
        first.sort()
        return a[first], b[first], t[first]

    def account_ids(self) -> np.ndarray:
        """A platform id string per account index, from per-platform random permutations."""
        return _ids(self.rng, self.acc_platform, ACCOUNT_IDS).to_numpy(zero_copy_only=False)

    def tables(self) -> tuple[pa.Table, pa.Table, pa.Table, np.ndarray]:
        """(accounts, posts, follows, account ids) in contract form; posts in time order."""
        acc_ids = self.account_ids()
        fa, fb, ft = self.follow_arrays()
        followers = np.bincount(fb, minlength=self.n_accounts)
        following = np.bincount(fa, minlength=self.n_accounts)
        extra = np.concatenate(self.acc["followers_extra"])
        plat_names = pa.array(np.array(PLATFORMS, dtype=object)[self.acc_platform])
        display = pa.concat_arrays(self.acc["display_name"])
        overrides = self.info.get("display_overrides", {})
        if overrides:
            values = display.to_numpy(zero_copy_only=False).copy()
            values[list(overrides)] = list(overrides.values())
            display = pa.array(values, pa.string())
        accounts = pa.table({
            "platform": plat_names,
            "account_id": pa.array(acc_ids, pa.string()),
            "asset_type": pa.concat_arrays(self.acc["asset_type"]),
            "handle": pa.concat_arrays(self.acc["handle"]),
            "display_name": display,
            "created_at": _timestamps(np.concatenate(self.acc["created_at"])),
            "followers_count": pa.array(followers + extra),
            "following_count": pa.array(following + (extra // 7)),
            "bio": pa.concat_arrays(self.acc["bio"]),
            "avatar_hash": pa.concat_arrays(self.acc["avatar_hash"]),
            "claimed_location": pa.concat_arrays(self.acc["claimed_location"]),
            "lang": pa.concat_arrays(self.acc["lang"]),
        })
        # Shuffle account rows so that file order says nothing about who made them.
        accounts = accounts.take(pa.array(self.rng.permutation(self.n_accounts)))

        # Posts in time order; ids are drawn in that order and targets remapped, so only
        # the free-text columns need a (costly) string take.
        order = np.lexsort((self.rng.random(self.n_posts), self.post_ts))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        author = self.post_author[order]
        post_platform = self.acc_platform[author]
        post_ids = _ids(self.rng, post_platform, POST_IDS)
        kind = self.post_kind[order]
        tgt = self.post_target[order]
        tgt = np.where(tgt >= 0, rank[np.maximum(tgt, 0)], -1)
        is_share = kind == K["share"]
        parent = pa.array(tgt, mask=(tgt < 0) | is_share)
        shared = pa.array(tgt, mask=(tgt < 0) | ~is_share)
        author_ids = pa.array(acc_ids, pa.string())
        take = pa.array(order)
        cols = {name: pa.concat_arrays(self.posts[name]).take(take) for name in _POST_STR}
        posts = pa.table({
            "platform": _names(PLATFORMS, post_platform),
            "post_id": post_ids,
            "account_id": author_ids.take(pa.array(author)),
            "created_at": _timestamps(self.post_ts[order]),
            "kind": _names(KINDS, kind),
            "text": cols["text"],
            "title": cols["title"],
            "urls": _lists(cols["urls"]),
            "hashtags": _lists(cols["hashtags"]),
            "media_hashes": _lists(cols["media_hashes"]),
            "parent_id": post_ids.take(parent),
            "shared_id": post_ids.take(shared),
            "lang": cols["lang"],
        })

        forder = np.argsort(ft, kind="stable")
        fa, fb, ft = fa[forder], fb[forder], ft[forder]
        follows = pa.table({
            "platform": _names(PLATFORMS, self.acc_platform[fa]),
            "follower_id": author_ids.take(pa.array(fa)),
            "followee_id": author_ids.take(pa.array(fb)),
            "created_at": _timestamps(ft),
        })
        return accounts, posts, follows, acc_ids


def _names(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(codes))


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64), pa.timestamp("s", tz="UTC"))


def _lists(joined: pa.Array) -> pa.Array:
    """Space-joined strings -> list<string>; null or empty -> null."""
    empty = pc.or_(pc.is_null(joined), pc.equal(joined, ""))
    split = pc.split_pattern(pc.fill_null(joined, ""), " ")
    return pc.if_else(empty, pa.nulls(len(joined), split.type), split)


def _ids(rng: np.random.Generator, platform: np.ndarray, shapes: dict) -> pa.Array:
    """Unique, unordered id strings per platform: a random permutation spread over a
    wide range (stride plus jitter), formatted with the platform's prefix and width."""
    pieces, positions = [], []
    for code, name in enumerate(PLATFORMS):
        idx = np.flatnonzero(platform == code)
        if not len(idx):
            continue
        prefix, width = shapes[name]
        n = len(idx)
        stride = max(1, min(10 ** min(width, 18) // max(n, 1) // 2, 10**12))
        base = 10 ** (min(width, 18) - 1) if name in ("x", "facebook") else 0
        nums = base + rng.permutation(n).astype(np.int64) * stride + rng.integers(
            0, stride, n
        )
        s = pc.utf8_lpad(pc.cast(pa.array(nums), pa.string()), width, "0")
        pieces.append(pc.binary_join_element_wise(prefix, s, ""))
        positions.append(idx)
    if not pieces:
        return pa.array([], pa.string())
    where = np.concatenate(positions)
    inverse = np.empty_like(where)
    inverse[where] = np.arange(len(where))
    return pa.concat_arrays(pieces).take(pa.array(inverse))
