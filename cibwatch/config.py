"""Every default of cibwatch, in one place, each with the reason it has that value.

A `Config` is a tree of frozen dataclasses, one section per pipeline stage. It can be
read from TOML (`[signals]`, `[graph]`, ... tables) and overridden from the command line
with dotted keys (`--set graph.fdr=0.01`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file or override names an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class IngestConfig:
    # DuckDB memory cap while ingesting: it spills to disk beyond this, so a 10M-post
    # file stays well under 2 GiB resident on a small machine.
    memory_limit: str = "1GB"
    # DuckDB threads while ingesting: the reference machine has 2 cores.
    threads: int = 2
    # Longest CSV/JSONL line accepted (bytes): a twarc API page of 100 tweets with its
    # includes is about 1 MB; DuckDB reserves ~16x this per gzip read buffer.
    max_line_size: int = 8 * 1024 * 1024
    # Rows shown per quarantine listing by default: enough to see the pattern.
    quarantine_preview: int = 20
    # Input bytes read and checked ahead of the file being loaded (beyond the next file,
    # which always is): small files queue up behind a big one, while at most about two
    # files' scratch tables are held at once.
    stage_ahead_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class SignalConfig:
    """Key extraction and the co-activity kernel (filled by the detection stage)."""

    # Shortest normalised text used as an exact fingerprint: "lol" or "+1" is not a key.
    min_text_chars: int = 25
    # Shortest text given a MinHash: below this a few edited characters change half of it.
    minhash_min_chars: int = 40
    # Characters per shingle: 5 is word-sized in Latin scripts and phrase-sized in CJK.
    shingle_chars: int = 5
    # MinHash permutations: 32 estimate Jaccard to about +-0.08 at half the cost of 64;
    # the group check below only needs to tell 0.7 from 0.3.
    minhash_perms: int = 32
    # LSH bands (32/8 = 4 rows each): pairs at Jaccard 0.7 collide with p > 0.93.
    minhash_bands: int = 8
    # Share of signature positions two band-colliding texts must agree on to be one group:
    # stops chance collisions from chaining unrelated texts.
    minhash_min_similarity: float = 0.7
    # Seed of the MinHash permutations, fixed so keys are identical run to run.
    minhash_seed: int = 1
    # Most posts (or distinct texts) normalised / MinHashed per batch: bounds the Arrow
    # copies in Python (all 10.8M texts at once: signals peaked at 9.5 GiB RSS).
    text_batch_rows: int = 500_000
    # Query parameters that only track clicks; dropped so one link stays one key.
    tracking_params_regex: str = (
        "^(utm_[a-z_]*|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|ref_src)(=|$)"
    )
    # A hashtag sequence key needs two tags: one tag is a topic, two in order a template.
    min_hashtags: int = 2
    # Accounts created within the same this-many minutes form one creation batch.
    batch_minutes: int = 5
    # Handle families are stem + at least this many trailing digits ("anna_li_4821").
    handle_min_digits: int = 2
    # ... and a stem at least this long, so "a123" and "x99" are not one family.
    handle_min_stem: int = 3
    # Shortest normalised display name used as a key ("Li" is not evidence).
    min_name_chars: int = 5
    # Windows (seconds) per key type. Centrally supplied texts are posted by operators
    # over days; the rarity weights and the null model, not the window, decide.
    window_text_s: int = 7 * 86400
    # Near-duplicate texts are the same supplied content, edited: same window as text.
    window_neardup_s: int = 7 * 86400
    # A supplied link is spread over a few days.
    window_url_s: int = 3 * 86400
    # A rare domain is pushed in bursts; a day keeps chance overlap on common sites low.
    window_domain_s: int = 86400
    # Re-shares: automated re-shares land within seconds of each other; organic ones
    # spread over hours, so a minute separates the two.
    window_share_s: int = 60
    # Comments/replies on the same post: operators arrive within hours of each other.
    window_reply_s: int = 6 * 3600
    # Reactions on the same post: as comments.
    window_react_s: int = 6 * 3600
    # A hashtag template is used within a day.
    window_hashtags_s: int = 86400
    # A supplied image/video frame circulates for days.
    window_media_s: int = 7 * 86400
    # Popular-key cap: a key used by more assets keeps a hash sample of this many for pair
    # generation (its rarity weight is near zero anyway): pairs stay linear in the data.
    max_key_accounts: int = 200
    # The same cap for follow/engage keys (no window, many per asset): an operation's
    # page followed by 2,000 is tested on a 20-asset sample; the attach step sees all.
    max_key_accounts_network: int = 20


@dataclass(frozen=True)
class GraphConfig:
    """Rarity weights, the null model and false-discovery-rate control."""

    # Benjamini-Hochberg level on candidate edges: 1 in 1,000 kept edges may be chance.
    fdr: float = 0.001
    # Fewest shared keys of one type that can make an edge: one shared key is anecdote.
    min_shared_keys: int = 3
    # Timed co-uses (texts, links, re-shares...) of a pair count in full only when they
    # fall on at least this many days (1 or 2; `days` is 0, 1 or "2 or more"): one viral
    # moment is one co-use, not a pattern.
    min_days: int = 2
    # Example key uses kept per edge and key type as evidence (explain shows them).
    evidence_per_type: int = 3
    # Most key pairs (a bound from the keys' users) counted in NumPy, 8 bytes each in
    # memory; beyond, DuckDB's GROUP BY, which spills. 1.1M posts: bound 17M (11.9M
    # pairs); 10.8M: bound 205M, so SQL there (NumPy took +1.8 GiB at the graph's peak).
    numpy_pairs_max: int = 200_000_000


@dataclass(frozen=True)
class ClusterConfig:
    """Leiden clustering and cluster scoring."""

    # Smallest cluster reported: a pair can be friends, three lock-step assets is a pattern.
    min_cluster_size: int = 3
    # Fixed seed so that reruns on unchanged data give the same clusters.
    seed: int = 42
    # Leiden CPM resolution as a share of the median edge weight: a cluster must be at
    # least this dense; sparser sub-networks (other shifts, teams) become other clusters.
    min_density: float = 0.02
    # A Leiden member needs this share of its edge weight inside its cluster: a bridge
    # with three quarters of its ties elsewhere is not claimed (an operation's offices
    # overlap, so a majority would be too strict).
    min_internal_share: float = 0.25
    # Share of a cluster's edges on which an evidence family must be significant to
    # count as support; content alone (texts, links) is what real campaigns share too.
    min_family_share: float = 0.3
    # ... counting an edge only where the family has at least this many co-uses: one
    # shared key is an anecdote (one viral post gives one re-share, one follow and one
    # engagement of its author at once).
    min_family_count: int = 2
    # Drop clusters that no family beyond content and links supports (false: keep them,
    # e.g. to review a page network that posts the same links).
    require_corroboration: bool = True
    # A cluster with fewer Leiden members than this needs two such families: a handful
    # of campaigners who also re-share one another is not yet a network.
    small_cluster: int = 8
    # ... and at least this many significant edges inside it: one edge may be the 1 in
    # 1,000 chance discovery the FDR allows, two independent ones rarely are.
    min_member_edges: int = 2
    # Low-activity assets: fewest direct ties (comments, replies, reactions, shares on the
    # cluster's posts, follows of its assets) that can attach an asset to a cluster.
    attach_min_ties: int = 2
    # ... or fewest keys (texts, links, follows, ...) shared with the cluster's members.
    attach_min_keys: int = 3
    # Attach rounds: a cluster grown by the first round tests the remaining assets with
    # more of its keys; two rounds reach nearly all, more rarely add any.
    attach_rounds: int = 2
    # ... making at least this share of the keys it used: an operator's drops, links
    # and echo chamber are a large part of what it does, an organic user's are not (the
    # organic assets attached at 0.2 on 1M-post worlds sat at shares of 0.20-0.22).
    attach_min_key_share: float = 0.25
    # ... but the asset's own engagement of the cluster's members (co-reactions,
    # co-comments, co-re-shares on their posts, engaging or following them) counts only
    # when all its shared keys make at least this share of its keys: engaging an
    # operation's posts is what its real audience does (the organic assets this test
    # attached on seeds 2, 3, 7 shared mostly such keys, at shares of 0.27-0.33), and
    # 0.5 is the ties test's bar.
    attach_audience_key_share: float = 0.5
    # ... and those ties must be at least this share of all its engagements/follows (or
    # of all it received): real people who also comment on an operation's posts are not
    # its assets.
    attach_min_share: float = 0.5
    # ... and its own engagements/follows of the cluster at least this many: a reader who
    # found an operation's posts reacts, shares and follows a few times, mostly there
    # (organic assets attached on these alone made 3 of 4 at scale 1 and 5 of 6-8 around
    # the persona operation at scale 10); operators attached on them alone made 27-36.
    attach_min_out_ties: int = 10
    # ... and the engagements/follows it received from the cluster at least this many:
    # an operation answering a real person twice makes a target, not an asset (an
    # activist attached on "2 of the 3 it received" at 10.8M posts, where a cluster's
    # share of all actions is tiny); 3 changes nothing on 11 worlds, 5 lost a few.
    attach_min_in_ties: int = 3
    # ... or fewest account-level key types (avatar, batch, handle, name) shared with the
    # cluster: one coincidence is common, two independent ones are not.
    attach_min_account_keys: int = 2
    # Benjamini-Hochberg level for attaching assets: as strict as the graph's edges.
    attach_fdr: float = 0.001
    # Clusters joined by at least this many edges form a group that the key test also
    # tests against (a large operation splits into many clusters): one edge between two
    # clusters may be the FDR's chance discovery, two rarely are.
    attach_group_min_edges: int = 2
    # Assets outside every cluster whose texts, links and media are mostly a cluster's
    # on another platform form clusters of their own (an operation's few assets on a
    # minor platform make too few pairs there); false: single-platform evidence only.
    cross_platform: bool = True
    # ... a key type's chance rate there is its share of the platform's uses outside the
    # candidates; with fewer than this many such uses (an operation's near-duplicates on
    # a minor platform: 3 of 30 on seed 3's YouTube) the type takes the rate pooled over
    # the content types, as 3 of 3 is no rate.
    cross_min_type_uses: int = 20
    # ... and such a cluster needs this many assets on its platform (each one passed its
    # own test): small_b's two Reddit accounts (30-36 of their 31-38 texts those of its
    # Facebook cluster) are a pair; one account alone may be someone quoting the texts.
    cross_min_cluster_size: int = 2
    # Rounds of the cross-platform test: a cluster it finds on one platform is the source
    # for the next round (persona's 8 X accounts on scale-1 seed 4 share 35-42 of their
    # ~85 texts with its Instagram cluster, which round 1 itself finds); stops early when
    # a round finds nothing.
    cross_rounds: int = 3
    # Signals listed in a cluster's evidence: the strongest few say why.
    evidence_signals: int = 5


@dataclass(frozen=True)
class CharacteriseConfig:
    """Time, engagement, follower, narrative and asset profiles."""

    # Example texts kept per narrative: what a takedown report quotes.
    narrative_examples: int = 3
    # Longest list kept for any one figure (amplifiers, families, bursts): a report shows
    # the top of each list; the workspace keeps the rest queryable.
    max_listed: int = 20
    # -- time ---------------------------------------------------------------------------
    # Fewer posts than this say nothing reliable about a daily rhythm.
    time_min_posts: int = 50
    # Kinds timed: originals are written on the operators' schedule; comments, shares and
    # reactions chase other people's posts (all kinds are used when originals are few).
    time_kinds: tuple[str, ...] = ("post",)
    # Offsets searched, in half-hour steps: every inhabited standard time from -12 to +14.
    offset_min: float = -12.0
    offset_max: float = 14.0
    # Prior weight of an offset that no time zone kept while the data were posted (+1:30
    # or +8:30 today; IANA tz database): operators live where people keep time, and an
    # office opening half an hour off the usual hour would otherwise read as one.
    uninhabited_offset_prior: float = 0.01
    # Office work starts near 09:00 on a Monday-Friday week. A start half an hour later is
    # the same histogram as an offset half an hour east, so only a prior tells them apart:
    # several starts may be listed, weighted by a normal prior (office_start_sd) around
    # the usual start, and the offset's confidence then sums over them. Default: the
    # usual start only. Fitting 08:30-09:30 cost exact offsets and did not make office
    # confidences honest (47/64 instead of 59/64 on scale-1 seeds 0-15; RESULTS.md).
    office_starts: tuple[float, ...] = (9.0,)
    office_start_usual: float = 9.0
    # Offices on Sunday-Thursday or Saturday-Wednesday weeks (Gulf, Iran) open earlier.
    office_starts_other_weeks: tuple[float, ...] = (8.0,)
    office_start_usual_other_weeks: float = 8.0
    # Spread of that prior (hours): most offices open within half an hour of the usual.
    office_start_sd: float = 0.5
    # Lunch starts 11:30-13:00 and lasts 1-2 hours (Chinese offices: 12:00-13:30/14:00).
    office_lunch_starts: tuple[float, ...] = (11.5, 12.0, 12.5, 13.0)
    office_lunch_lengths: tuple[float, ...] = (1.0, 1.5, 2.0)
    # The day shift ends between 16:30 and 18:00.
    office_ends: tuple[float, ...] = (16.5, 17.0, 17.5, 18.0)
    # After the day shift: nothing, an evening block of 2-3 hours after supper, or a night
    # shift (with a meal break) run by a second team; hours past 24 run into the next day.
    # Without the 2.5-3 h evenings ending 21:30, offices whose evenings end then read as
    # half an hour east (Spamouflage, scale-1 seed 0; benchmarks/RESULTS.md).
    office_extra_blocks: tuple = (
        (), ((19.0, 21.0),), ((19.0, 22.0),), ((18.5, 20.5),), ((19.0, 21.5),),
        ((18.5, 21.5),), ((21.0, 25.0), (26.0, 29.0)),
    )
    # Hours over which a work block ramps up from a quarter to full pace (staff arrive
    # and log in). 0: flat blocks. A 30-minute ramp only made up for posts binned up to
    # 7.5 minutes late (rounded, not floored, into quarter hours; fixed 2026-11-29): with
    # correct bins it moved Spamouflage half an hour east in 4 of 7 scale-1 seeds, flat
    # blocks none (benchmarks/RESULTS.md).
    office_ramp_hours: float = 0.0
    # Office templates have each edge spread evenly over these hours around its time (a
    # moving average; several values: each its own set of templates): an operation's
    # offices and staff start, eat and leave minutes apart, and sharp edges made
    # Spamouflage's staggered offices (08:30-09:30) read half an hour east at confidence
    # 1.00 (scale-1 seed 13). 0.5 h, 1 h, and 0 h + 1 h each fixed it on seeds 0-15 with
    # no new miss; 0.5 h alone costs no extra templates (benchmarks/RESULTS.md).
    office_edge_spread_hours: tuple[float, ...] = (0.5,)
    # Off-day activity relative to workdays: near-empty, light, or a third of workdays.
    office_off_day_factors: tuple[float, ...] = (0.03, 0.1, 0.35)
    # Ordinary users post about as much, or a bit more, on weekends.
    human_weekend_factors: tuple[float, ...] = (0.8, 1.0, 1.25)
    # People keep earlier or later hours than the average curve (chronotype): the human
    # template is also tried shifted by up to an hour, with a prior of sd half an hour,
    # and the offset's posterior sums over them, so its confidence stays honest. In
    # quarter-hour steps: with half-hour steps a group fitting best at +1:15 (unshifted
    # curve) reached +1:30 from +1 and from +2 with one half-hour shift each, the same
    # prior price, a coin flip; in quarter hours the nearer offset needs the smaller shift
    # (a finer sum over the same prior: exact offsets 60/64 -> 62/64 on scale-1 seeds
    # 0-15, but 322 -> 321/400 on the human-group simulation; benchmarks/RESULTS.md).
    human_chronotype_hours: tuple[float, ...] = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5,
                                                 0.75, 1.0)
    human_chronotype_sd: float = 0.5
    # Share of activity following the template; the rest is flat noise (late posts,
    # scheduled posts, automation mixed in).
    template_mix: tuple[float, ...] = (0.85, 0.95, 0.99)
    # Below this gain over flat activity (nats per post) no daily rhythm is present: the
    # activity is automated. A pure human diurnal curve gains about 0.1.
    automated_max_gain: float = 0.03
    # Office is preferred over the human curve only by a clear likelihood margin (nats
    # per post), so that ordinary users are not called shift workers.
    office_margin: float = 0.02
    # Breaks are read where the day profile's rate changes: each extra segment of the
    # piecewise-constant Poisson fit pays this many nats (None: BIC, log 96 bins).
    break_segment_penalty: float | None = None
    # Posts added to an empty valley floor so it has a rate (Jeffreys' half count): a
    # thin tail of work is compared with a near-zero break level, not with zero.
    break_floor_posts: float = 0.5
    # Quiet gaps of 30 minutes to 4 hours between work blocks are breaks (lunch, supper,
    # a shift change between day and night teams); shorter ones are noise; the longest
    # quiet run of the day is the night.
    min_break_minutes: int = 30
    # Below this many posts in a typical quarter hour the profile is smoothed further
    # (up to an hour's width) before breaks are read: noise would pass for breaks.
    break_min_bin_posts: float = 20.0
    max_break_hours: float = 4.0
    # An operation with several teams (or clusters) of at least this many timed posts gets
    # its work hours and breaks by consensus of their own readings (a break when at least
    # half are away); below it a team's day is too sparse to show its own breaks.
    break_cluster_min_posts: int = 200
    # Teams inside an operation are found from when its accounts post (`time.teams`):
    # accounts with fewer timed posts than this say too little to be placed (their posts
    # still count in the operation's histogram)...
    team_account_min_posts: int = 3
    # ...binned by the hour of each day: a team works the same hours of the same days.
    team_bin_minutes: int = 60
    # Most teams searched (Spamouflage: four offices; each extra team costs a fit).
    team_max: int = 8
    # Pseudo-posts per bin and team (a light Dirichlet prior): a team's empty hours are
    # unlikely, not impossible.
    team_prior_posts: float = 0.1
    # Teams whose work blocks all start and end within this many minutes of each other
    # keep one schedule and vote as one (an office in two rotas, or cut in two by the
    # search): a quarter hour is the resolution a team's reading has.
    team_same_minutes: int = 15
    # Clusters keep their own hours (separate teams) when a chi-square test rejects one
    # shared daily schedule at this level; on scale-1 synthetic worlds platform splits of
    # one workforce give p 0.2-1, four offices half an hour apart p < 1e-250.
    cluster_hours_max_p: float = 1e-3
    # A team is on a break when it posts below this share of its busy level: stray posts,
    # not work (its last stragglers before a break still count as work).
    team_active_level: float = 0.05
    # A holiday is quiet when the day has at most this share of a usual workday's posts...
    holiday_quiet_ratio: float = 0.3
    # ...judged only when a usual workday has enough posts for "quiet" to mean something.
    holiday_min_baseline: float = 20.0
    # -- engagement ---------------------------------------------------------------------
    # Authentic accounts with at least this many followers who engaged are listed as
    # amplifiers: a breakout beyond the operation's own audience.
    amplifier_min_followers: int = 10_000
    # Authentic engagements needed before a platform counts as reached (Breakout Scale).
    breakout_min_engagements: int = 5
    # Connected groups of at least this many authentic engagers form a community.
    community_min_size: int = 3
    # An authentic amplifier this big is a candidate high-profile figure (category 5).
    high_profile_followers: int = 1_000_000
    # -- followers ----------------------------------------------------------------------
    # Follower accounts with at most this many posts have "no or almost no activity".
    inactive_max_posts: int = 1
    # Followers meeting this many of the three behavioural criteria (created in bursts,
    # inactive, followed in bursts) are inauthentic; one alone fits many real users.
    follower_min_criteria: int = 2
    # Creation and follow bursts are counted in hourly buckets, each judged with its
    # neighbours (a sliding 3-hour window): bought batches land within hours.
    burst_bucket_minutes: int = 60
    burst_neighbours: int = 1
    # A window is a burst with at least this many events (five strangers in three hours
    # is rare for anyone but a seller)...
    burst_min_events: int = 5
    # ...and at least this many times the events a uniform spread would put in it.
    burst_factor: float = 10.0
    # -- assets -------------------------------------------------------------------------
    # Assets created no more than this many minutes apart belong to one creation batch.
    batch_gap_minutes: int = 10
    # Smallest creation batch reported: a few accounts a day is normal sign-up traffic.
    batch_min_assets: int = 5
    # Smallest handle family reported.
    handle_family_min_assets: int = 3
    # -- narratives ---------------------------------------------------------------------
    # Distinct texts clustered per group (the most repeated first): themes need hundreds,
    # not millions, and the linkage tree costs n squared.
    narrative_max_texts: int = 1000
    # Texts closer than this cosine distance (word stems + char n-grams, average linkage)
    # are one message: a headline with its typos, emoji, tags and reordered copies.
    narrative_message_distance: float = 0.9
    # Messages closer than this (their summed word stems and hashtags) are one theme.
    # Both distances chosen on synthetic scale-1 worlds, seeds 0-2 (the planted themes
    # came out as the top themes from 0.5 to 0.7 here), checked on held-out seeds 3-4.
    narrative_theme_distance: float = 0.6
    # Share of the theme similarity taken from hashtags (the rest from words): one theme's
    # headlines often share no words, and its translations none at all, but an operation
    # tags a theme the same way throughout.
    narrative_tag_weight: float = 0.7
    # Hashtags on messages holding more than this share of an operation's posts are its
    # generic tags (#USA on everything) and are ignored for themes.
    narrative_tag_max_spread: float = 0.5
    # Share of the text similarity taken from character n-grams (typos, CJK runs).
    narrative_char_weight: float = 0.2
    # Word stems: the first letters of each word (origin/originate, lab/labs agree).
    narrative_stem_chars: int = 6
    # Character n-gram range of the TF-IDF (char_wb works for Chinese with no spaces).
    narrative_ngram_min: int = 2
    narrative_ngram_max: int = 4
    # Terms in a theme's label.
    narrative_label_terms: int = 3
    # Countries, people, domains and hashtags listed per operation.
    top_targets: int = 10
    # Fixed seed: the same data gives the same themes.
    seed: int = 0


@dataclass(frozen=True)
class OperationsConfig:
    """Cross-platform linking, known-operation matching, stable ids and history."""

    # Link strength (noisy-OR over evidence families) that joins two clusters into one
    # operation: about four rare shared keys of one kind, or strong keys of two kinds.
    min_link_strength: float = 0.9
    # Two clusters on one platform already failed to join at the account level, so
    # calling them one operation's "offices" needs more than a cross-platform link.
    same_platform_min_strength: float = 0.97
    # Strength at which a cluster is attributed to a saved known operation: as for links.
    known_min_strength: float = 0.9
    # Independent rare keys beyond chance (rarity-weighted, time excluded) a link needs
    # at least: one coincidence, however rare, never joins two operations.
    min_link_keys: float = 2.0
    # Evidence of one shared key used by nobody else, per family: 0.5 means each such
    # key halves the doubt. Lower for families where chance matches are cheap.
    content_key_strength: float = 0.5
    # A shared link to the same article or video: as strong as a shared text.
    url_key_strength: float = 0.5
    # A shared rare domain: weaker, one site serves many unrelated pages.
    domain_key_strength: float = 0.3
    # The same image or video frame hash: as strong as a shared text.
    media_key_strength: float = 0.5
    # One cluster's posts pointing at the other's own asset (a channel URL, @handle):
    # the operation advertising itself, the strongest single cue.
    xref_key_strength: float = 0.6
    # The same handle on two platforms: strong, but common words collide.
    handle_key_strength: float = 0.4
    # The same display name: weaker, people share names.
    name_key_strength: float = 0.25
    # The same profile-picture hash: reused stock photos are a known operator habit.
    avatar_key_strength: float = 0.5
    # Re-sharing or answering the same post (same platform only): offices amplify the
    # same posts, but so do fans of a popular post, so weak per key.
    engagement_key_strength: float = 0.2
    # An asset already in a saved operation's signature: direct continuity.
    asset_key_strength: float = 0.5
    # `keys` written by detection -> evidence family. Post-id keys are platform scoped.
    key_type_families: tuple[tuple[str, str], ...] = (
        ("text", "content"),
        ("neardup", "neardup"),
        ("url", "url"),
        ("domain", "domain"),
        ("media", "media"),
        ("avatar", "avatar"),
        ("name", "name"),
        ("share", "engagement"),
        ("reply", "engagement"),
    )
    # Linking rounds: after each, what is joined is compared as one node, so a fragment
    # too weak to link to any single cluster joins the operation; stops when nothing joins.
    link_rounds: int = 4
    # Standard deviations above the chance overlap before shared keys count: two busy
    # clusters share popular keys by chance; 2 sd leaves ~2% of chance pairs any units.
    chance_margin: float = 2.0
    # A key shared by more clusters than this is common currency (a viral headline), not
    # the mark of one operation (whose clusters are a few per platform); skipping it also
    # keeps the pair join small (at most n^2/2 pairs per key).
    max_key_nodes: int = 30
    # Shortest normalised title or sentence used as a content key: a headline, not "lol".
    content_min_chars: int = 30
    # Shortest normalised handle compared across platforms: "news" is not a fingerprint.
    handle_min_chars: int = 5
    # Hour-of-week correlation is supporting evidence only (two operations in one time
    # zone correlate too): it adds at most this strength ...
    time_max_strength: float = 0.3
    # ... and only above this correlation, reached at 1.0 (same shifts, same breaks).
    time_min_correlation: float = 0.6
    # Fewest posts per cluster for a time fingerprint: fewer make a noisy histogram.
    time_min_posts: int = 50
    # An operation keeps a previous run's id when at least this share of the smaller of
    # the two asset sets is shared: growth and churn keep the id, a mix-up does not.
    id_min_overlap: float = 0.3
    # Keys kept per family in a saved signature, most used first: a shareable file.
    signature_max_keys: int = 5000
    # Example keys quoted per family in a link's evidence.
    evidence_examples: int = 3
    # Hosts whose URLs name an asset on a platform (for cross-references).
    platform_domains: tuple[tuple[str, str], ...] = (
        ("facebook.com", "facebook"),
        ("fb.com", "facebook"),
        ("instagram.com", "instagram"),
        ("twitter.com", "x"),
        ("x.com", "x"),
        ("youtube.com", "youtube"),
        ("tiktok.com", "tiktok"),
        ("reddit.com", "reddit"),
        ("t.me", "telegram"),
        ("vk.com", "vk"),
        ("medium.com", "medium"),
        ("pinterest.com", "pinterest"),
        ("quora.com", "quora"),
        ("soundcloud.com", "soundcloud"),
        ("vimeo.com", "vimeo"),
        ("threads.net", "threads"),
    )


@dataclass(frozen=True)
class ReportConfig:
    """Reports and exports (cibwatch.report): what is tagged, listed and drawn."""

    # Echo-chamber ratio from which the operation's own engagement is tagged as
    # amplification by fake accounts: most of its engagement is then self-made.
    echo_chamber_min: float = 0.5
    # Own comments/replies/shares on the operation's own posts needed before tagging
    # faked engagement: a handful can be chance, dozens are a practice.
    self_engagement_min: int = 5
    # Share of inauthentic followers from which bought followers are tagged: a fifth is
    # far above the few percent of fake followers ordinary accounts attract.
    fake_follower_min_share: float = 0.2
    # A domain counts as the operation's own when at least this share of all posts
    # linking to it come from the operation (a news site shared by everyone does not).
    domain_min_share: float = 0.8
    # ... and at least this many of the operation's posts link to it.
    domain_min_posts: int = 3
    # URLs per operation in the indicators and the STIX bundle: enough to block a
    # campaign's sites without turning the file into a crawl dump.
    max_urls: int = 200
    # Evidence items and example pairs shown per operation: the strongest first.
    evidence_items: int = 10
    # Nodes drawn in the network picture: more is an unreadable hairball; the
    # strongest-connected members are kept and the picture says how many are shown.
    network_max_nodes: int = 300
    # Platforms whose assets are published as counts only, as Meta does for its own
    # platforms; assets elsewhere are listed as defanged profile links.
    tally_only_platforms: tuple[str, ...] = ("facebook", "instagram", "threads")


@dataclass(frozen=True)
class ServeConfig:
    # Loopback only unless the analyst decides otherwise.
    host: str = "127.0.0.1"
    port: int = 8765
    # Secure cookie flag even over plain http (set it behind a TLS-terminating proxy);
    # it is always set when the request itself arrives over https.
    secure_cookies: bool = False
    # Idle session lifetime: a working day; a stolen cookie dies overnight.
    session_hours: float = 8.0
    # Failed logins allowed per client address and per user name within the window
    # below before login answers 429: enough for typos, far too few for guessing.
    login_max_failures: int = 5
    login_window_seconds: int = 300
    # Largest request body accepted (forms, JSON): reviews and notes are small; anything
    # bigger is abuse or a mistake.
    max_body_bytes: int = 65_536
    # Rows per page in post search and listings: fast to render, enough to scan.
    page_size: int = 50
    # Largest page a client may ask for.
    max_page_size: int = 500
    # Nodes drawn in an operation's network view: beyond this the canvas is unreadable
    # and slow; the strongest-connected members are kept.
    network_max_nodes: int = 400
    # Evidence posts shown on an asset page.
    asset_evidence_posts: int = 20


@dataclass(frozen=True)
class EngineConfig:
    """Where the key extraction, kernel and pair aggregation run (cibwatch.engines)."""

    # DuckDB in process is the default: one machine handles 10M posts without a cluster.
    name: str = "duckdb"
    # Spark master: two local cores is the reference machine; `spark://host:7077` or
    # `yarn` when the data outgrows it.
    spark_master: str = "local[2]"
    # Shuffle partitions: Spark's 200 mean 200 tiny tasks on two cores; a few per core.
    spark_shuffle_partitions: int = 8
    # Driver JVM heap: the driver only plans and moves small near-duplicate edge lists.
    spark_driver_memory: str = "2g"
    # Driver JVM flags: on a small machine the optimising JIT and parallel GC threads
    # cost more CPU than short jobs win back (measured 3x faster on 2 cores); a
    # long-running cluster driver may set "".
    spark_java_options: str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    # Folder for the Parquet files exchanged with Spark ("" = a temp folder, removed
    # after the run); on a cluster, storage every node can read (HDFS, S3, NFS).
    spark_workdir: str = ""
    # DuckDB memory cap during detect: its default (80% of RAM) took 15.6 GiB at 1M posts;
    # beyond the cap it spills to disk. The process needs ~3 GiB more (signatures, Arrow
    # batches, Leiden), so 10M posts fit 8 GiB at 4GB (signals at 10.8M posts: peak 9.2
    # GiB at 6GB, 8.1 at 5GB, 7.2 at 4GB, same speed; benchmarks/RESULTS.md).
    duckdb_memory_limit: str = "4GB"
    # DuckDB threads during detect: the reference machine has 2 cores (0 = DuckDB default).
    duckdb_threads: int = 2


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    signals: SignalConfig = field(default_factory=SignalConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    characterise: CharacteriseConfig = field(default_factory=CharacteriseConfig)
    operations: OperationsConfig = field(default_factory=OperationsConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a TOML file whose tables are the config sections."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        return cls().updated(data, source=str(path))

    def updated(self, data: dict[str, Any], source: str = "config") -> Config:
        """A copy with the values of a nested dict (`{"graph": {"fdr": 0.01}}`) applied."""
        sections = {}
        for name, values in data.items():
            if name not in {f.name for f in dataclasses.fields(self)}:
                raise ConfigError(f"{source}: unknown config section [{name}]")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table")
            section = getattr(self, name)
            sections[name] = _update_section(section, values, f"{source}: [{name}]")
        return dataclasses.replace(self, **sections)

    def with_overrides(self, overrides: list[str]) -> Config:
        """Apply `section.key=value` strings, values parsed as TOML scalars."""
        data: dict[str, dict[str, Any]] = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"override {item!r}: expected section.key=value")
            try:
                value = tomllib.loads(f"v = {raw.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw.strip()
            data.setdefault(section, {})[name] = value
        return self.updated(data, source="--set")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _update_section(section: Any, values: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section)}
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}")
        current = getattr(section, key)
        if isinstance(current, bool) != isinstance(value, bool) or (
            isinstance(current, int | float) and not isinstance(value, int | float)
        ):
            raise ConfigError(f"{where}: {key} must be {type(current).__name__}")
        if isinstance(current, float) and isinstance(value, int):
            value = float(value)
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(section, **changes)


DEFAULT = Config()
