"""Text material: multilingual organic chatter, names, domains, hashtags, the central
headlines of the operations and the hostile payloads adversaries put in posts.

Organic texts are built column-wise with Arrow (`binary_join_element_wise` over word
columns), so a million unique texts cost a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Small everyday vocabularies. Random word sequences from them are unique texts in the
# right script, which is all a coordination detector can tell apart.
VOCAB: dict[str, str] = {
    "en": "today coffee weekend game traffic rain sunny kids work office movie music "
    "dinner friends really love hate think maybe great tired finally morning night "
    "team match news price school city bus train garden book phone new old happy long "
    "week honestly crazy good bad funny dog cat lunch beach",
    "es": "hoy café fin semana partido tráfico lluvia niños trabajo película música cena "
    "amigos verdad amor creo tal vez genial cansado por fin mañana noche equipo precio "
    "escuela ciudad tren libro nuevo feliz perro gato playa",
    "pt": "hoje café fim semana jogo trânsito chuva crianças trabalho filme música jantar "
    "amigos verdade amor acho talvez ótimo cansado finalmente manhã noite time preço "
    "escola cidade ônibus livro novo feliz cachorro praia",
    "fr": "aujourd'hui café week-end match pluie enfants travail film musique dîner amis "
    "vraiment aime pense peut-être génial fatigué enfin matin soir équipe prix école "
    "ville train livre nouveau content chien chat plage",
    "de": "heute Kaffee Wochenende Spiel Stau Regen Kinder Arbeit Film Musik Abendessen "
    "Freunde wirklich liebe denke vielleicht toll müde endlich Morgen Abend Mannschaft "
    "Preis Schule Stadt Zug Buch neu glücklich Hund Katze Strand",
    "it": "oggi caffè fine settimana partita traffico pioggia bambini lavoro film musica "
    "cena amici davvero amo penso forse fantastico stanco finalmente mattina sera "
    "squadra prezzo scuola città treno libro nuovo felice cane gatto mare",
    "zh": "今天 咖啡 周末 比赛 下雨 孩子 工作 电影 音乐 晚饭 朋友 真的 喜欢 觉得 也许 "
    "太好了 好累 终于 早上 晚上 球队 价格 学校 城市 地铁 书 新的 开心 小狗 猫咪 海边 "
    "台北 香港 夜市 奶茶 加班 考试",
    "ja": "今日 コーヒー 週末 試合 雨 子供 仕事 映画 音楽 晩ご飯 友達 本当に 好き 思う "
    "たぶん 最高 疲れた やっと 朝 夜 チーム 値段 学校 電車 本 新しい 嬉しい 犬 猫 海",
    "ko": "오늘 커피 주말 경기 비 아이들 일 영화 음악 저녁 친구 진짜 좋아 생각 아마 최고 "
    "피곤해 드디어 아침 밤 팀 가격 학교 지하철 책 새로운 행복 강아지 고양이 바다",
    "id": "hari ini kopi akhir pekan pertandingan hujan anak kerja film musik makan malam "
    "teman beneran suka pikir mungkin mantap capek akhirnya pagi malam tim harga sekolah "
    "kota kereta buku baru senang kucing pantai",
    "ms": "hari ini kopi hujung minggu perlawanan hujan anak kerja filem muzik makan malam "
    "kawan betul suka rasa mungkin terbaik penat akhirnya pagi malam pasukan harga "
    "sekolah bandar kereta api buku baru gembira kucing pantai",
    "tl": "ngayon kape weekend laro ulan mga bata trabaho pelikula musika hapunan barkada "
    "talaga mahal ko sa tingin baka astig pagod sa wakas umaga gabi koponan presyo "
    "paaralan lungsod tren libro bago masaya aso pusa dagat",
    "ar": "اليوم قهوة عطلة مباراة مطر أطفال عمل فيلم موسيقى عشاء أصدقاء حقا أحب أعتقد ربما "
    "رائع متعب أخيرا صباح مساء فريق سعر مدرسة مدينة قطار كتاب جديد سعيد قطة بحر",
    "hi": "आज कॉफी सप्ताहांत मैच बारिश बच्चे काम फिल्म संगीत खाना दोस्त सच में प्यार लगता "
    "शायद बढ़िया थका आखिरकार सुबह रात टीम कीमत स्कूल शहर ट्रेन किताब नया खुश कुत्ता समुद्र",
    "ru": "сегодня кофе выходные матч дождь дети работа фильм музыка ужин друзья правда "
    "люблю думаю может отлично устал наконец утро вечер команда цена школа город поезд "
    "книга новый рад собака кошка море",
    "tr": "bugün kahve hafta sonu maç yağmur çocuklar iş film müzik akşam yemeği arkadaşlar "
    "gerçekten seviyorum bence belki harika yorgun sonunda sabah gece takım fiyat okul "
    "şehir tren kitap yeni mutlu köpek kedi deniz",
    "vi": "hôm nay cà phê cuối tuần trận đấu mưa con cái công việc phim âm nhạc bữa tối bạn "
    "bè thật sự thích nghĩ có lẽ tuyệt mệt cuối cùng sáng tối đội giá trường thành phố "
    "tàu sách mới vui chó mèo biển",
    "th": "วันนี้ กาแฟ สุดสัปดาห์ ฟุตบอล ฝนตก เด็กๆ งาน หนัง เพลง ข้าวเย็น เพื่อน จริงๆ ชอบ คิดว่า "
    "อาจจะ เยี่ยม เหนื่อย ในที่สุด ตอนเช้า ตอนกลางคืน ทีม ราคา โรงเรียน เมือง รถไฟ หนังสือ ใหม่ "
    "มีความสุข หมา แมว ทะเล",
    "fa": "امروز قهوه آخر هفته بازی باران بچه‌ها کار فیلم موسیقی شام دوستان واقعا دوست دارم "
    "فکر می‌کنم شاید عالی خسته بالاخره صبح شب تیم قیمت مدرسه شهر قطار کتاب جدید خوشحال گربه دریا",
}
NO_SPACE_LANGS = {"zh", "ja", "th"}
_VOCAB_ARR = {lang: pa.array(words.split()) for lang, words in VOCAB.items()}

def _split(text: str) -> list[str]:
    return text.split()


EMOJI = ["😂", "🙏", "❤️", "🔥", "👍", "😭", "🎉", "😊", "🤔", "💯", "☕", "🌧️", "⚽", "🐶"]

FIRST_NAMES = _split(
    "james mary john linda david sarah maria jose ana carlos sofia lucas emma noah "
    "olivia liam mia wei jun hui mei yan ming kenji yuki hana minji jisoo ahmed "
    "fatima omar layla priya rahul arjun ananya ivan olga dmitri elena mehmet ayse "
    "nguyen linh somchai ploy budi siti juan miguel chloe lea hans anna marco giulia "
    "reza sara grace kevin tony jason amy cindy vicky joy mark paolo"
)
LAST_NAMES = _split(
    "smith johnson brown garcia martinez lopez silva santos chen wang lin huang tan "
    "lim ng wong lee kim park tanaka sato khan ali hassan patel sharma singh ivanov "
    "petrova yilmaz kaya nguyen tran wijaya santoso reyes cruz dubois martin muller "
    "schmidt rossi bianchi ahmadi rezaei taylor walker cooper cohen"
)
SYLLABLES = _split(
    "ka lo mi ra ne to su va li po de zen tri mar bel cor dia fin gal hex ion jun "
    "kor lum nor ora pix quo rio sol tek uni vox wal xen yor zor"
)
TLDS = ["com", "com", "com", "net", "org", "co.uk", "de", "com.au", "in", "com.br", "jp",
        "tw", "sg", "ph", "io", "news", "info", "fr", "es", "ru"]


def words(rng: np.random.Generator, lang: str, n: int, k: int) -> pa.Array:
    """n strings of k random words of `lang` (joined as the script writes them)."""
    vocab = _VOCAB_ARR.get(lang, _VOCAB_ARR["en"])
    cols = [vocab.take(pa.array(rng.integers(0, len(vocab), n))) for _ in range(k)]
    sep = "" if lang in NO_SPACE_LANGS else " "
    if k == 1:
        return cols[0]
    return pc.binary_join_element_wise(*cols, sep)


_LANGS = sorted(VOCAB)
_PHRASES_PER_LANG = 4096
_PHRASE_WORDS = 3
_MIN_PHRASES, _MAX_PHRASES = 3, 6  # 4096^3 combinations: no accidental twins


def _phrase_table() -> pa.Array:
    """4,096 random three-word phrases per language, all languages in one array; texts
    are built from phrases (few `take` calls) instead of single words."""
    rng = np.random.default_rng(20240311)
    out = []
    for lang in _LANGS:
        vocab = pa.array(VOCAB[lang].split())
        cols = [vocab.take(pa.array(rng.integers(0, len(vocab), _PHRASES_PER_LANG)))
                for _ in range(_PHRASE_WORDS)]
        out.append(pc.binary_join_element_wise(*cols, "" if lang in NO_SPACE_LANGS else " "))
    return pa.concat_arrays([*out, pa.array([""])])  # the last entry pads short texts


_PHRASES = _phrase_table()
_PAD = len(_PHRASES) - 1


def organic_texts(rng: np.random.Generator, langs: np.ndarray) -> pa.Array:
    """One unique everyday text per entry of `langs` (ISO codes): 9 to 18 words of that
    language (3-6 random phrases; 4096^k combinations), a quarter with an emoji."""
    n = len(langs)
    langs = np.asarray(langs, dtype=str)
    code = np.searchsorted(_LANGS, langs).clip(0, len(_LANGS) - 1)
    code = np.where(np.asarray(_LANGS)[code] == langs, code, _LANGS.index("en"))
    length = rng.integers(_MIN_PHRASES, _MAX_PHRASES + 1, n)
    spaced = ~np.isin(np.asarray(_LANGS)[code], list(NO_SPACE_LANGS))
    base = code * _PHRASES_PER_LANG
    cols = []
    for k in range(_MAX_PHRASES):
        pos = base + rng.integers(0, _PHRASES_PER_LANG, n)
        cols.append(_PHRASES.take(pa.array(np.where(k < length, pos, _PAD))))
    sep = pa.array(np.where(spaced, " ", ""))  # one separator per row: one join
    out = pc.utf8_rtrim(pc.binary_join_element_wise(*cols, sep), characters=" ")
    emoji = pa.array(np.array(EMOJI)[rng.integers(0, len(EMOJI), n)])
    with_emoji = pc.binary_join_element_wise(out, emoji, " ")
    return pc.if_else(pa.array(rng.random(n) < 0.25), with_emoji, out)


def pick(rng: np.random.Generator, items: list[str] | np.ndarray, n: int) -> np.ndarray:
    return np.asarray(items, dtype=object)[rng.integers(0, len(items), n)]


def join(*cols, sep: str = "") -> pa.Array:
    """Element-wise string join of arrays / numpy object arrays / scalars."""
    arrs = [c if isinstance(c, pa.Array | str) else pa.array(c, pa.string()) for c in cols]
    return pc.binary_join_element_wise(*arrs, sep)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_ids(rng: np.random.Generator, n: int, digits: int = 16) -> np.ndarray:
    """n random hex strings (perceptual-hash-like), built bytewise (no per-row Python)."""
    raw = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    chars = np.empty((n, 16), np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    out = np.ascontiguousarray(chars[:, :digits]).view(f"S{digits}").ravel()
    return out.astype(f"U{digits}").astype(object)


def hex_array(rng: np.random.Generator, n: int, digits: int = 16) -> pa.Array:
    """Like `hex_ids`, as an Arrow string array (no Python objects: for per-post use)."""
    raw = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    chars = np.empty((n, 16), np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    flat = np.ascontiguousarray(chars[:, :digits]).ravel()
    offsets = np.arange(0, (n + 1) * digits, digits, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(flat))


def domains(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct made-up news/blog domains."""
    a = pick(rng, SYLLABLES, n * 2)
    b = pick(rng, SYLLABLES, n * 2)
    c = pick(rng, ["", "news", "daily", "times", "post", "blog", "hub", "wire", "", ""], n * 2)
    t = pick(rng, TLDS, n * 2)
    names = np.array([f"{x}{y}{z}.{w}" for x, y, z, w in zip(a, b, c, t, strict=True)])
    return pd_unique(names)[:n]


def pd_unique(values: np.ndarray) -> np.ndarray:
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def hashtag_pool(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct everyday hashtags (camel-cased word pairs)."""
    en = VOCAB["en"].split()
    base = ["MondayMotivation", "ThrowbackThursday", "FridayFeeling", "WorldCup", "Oscars",
            "Foodie", "Travel", "NowPlaying", "TBT", "Election2024", "ClimateAction",
            "MusicMonday", "Photography", "Fitness", "GameDay", "BookTok", "OOTD"]
    a = pick(rng, en, n * 3)
    b = pick(rng, en + [str(y) for y in range(2019, 2025)], n * 3)
    tags = np.array([x.capitalize() + y.capitalize() for x, y in zip(a, b, strict=True)])
    return pd_unique(np.concatenate([np.array(base), tags]))[:n]


# ----------------------------------------------------------------------------- operations
# Centrally written headlines of the Spamouflage-like operation, per theme, in English
# and Chinese (keywords in both: a theme's Chinese posts are the same theme). Accounts
# post them with light variation (see `variants`).
SPAM_THEMES: dict[str, dict] = {
    "covid origin / us labs": {
        "keywords": ["fort detrick", "lab", "origin", "virus", "biolab", "德特里克堡", "实验室"],
        "en": [
            "The truth about Fort Detrick must be investigated. Why is the US hiding its biolabs?",
            "Experts ask: did the virus originate in a US lab? The world deserves answers.",
            "US biolabs around the world are a threat to global health. Close them now.",
            "Fort Detrick files still secret. What is Washington afraid of?",
            "New evidence points to an American origin of the virus. Media stays silent.",
        ],
        "zh": [
            "德特里克堡的真相必须调查。美国为什么隐瞒生物实验室？",
            "专家质疑：病毒是否起源于美国实验室？世界需要答案。",
            "美国海外生物实验室威胁全球健康。",
            "德特里克堡档案至今保密，华盛顿在害怕什么？",
        ],
    },
    "us social decline": {
        "keywords": ["shooting", "homeless", "drug", "violence", "democracy", "枪击", "毒品",
                     "流浪", "民主"],
        "en": [
            "Another mass shooting in America. When will Washington protect its people?",
            "Homeless camps spread across US cities while politicians fight for power.",
            "American democracy is a show for the rich. Ordinary people pay the price.",
            "Drug crisis kills thousands of Americans every week. The government does nothing.",
            "Racial violence shows the real face of US human rights.",
        ],
        "zh": [
            "美国又发生大规模枪击事件，华盛顿何时保护人民？",
            "美国城市流浪者营地蔓延，政客只顾争权夺利。",
            "美式民主是富人的游戏，普通人付出代价。",
            "毒品危机每周夺走数千美国人的生命。",
        ],
    },
    "attacks on critics": {
        "keywords": ["traitor", "fugitive", "liar", "scandal", "critic", "骗子", "逃犯", "叛徒"],
        "en": [
            "The so-called dissident is a liar paid by foreign forces. Expose him!",
            "Fugitive businessman caught in new fraud scandal. His followers were cheated.",
            "Critic exposed: the traitor takes money from anti-China groups.",
            "This journalist spreads rumours for money. Do not believe the lies.",
        ],
        "zh": [
            "所谓异见人士是境外势力收买的骗子，揭穿他！",
            "逃犯商人再陷诈骗丑闻，追随者被骗。",
            "揭露：叛徒拿反华组织的钱造谣。",
        ],
    },
    "praise for china": {
        "keywords": ["development", "harmony", "prosperity", "belt and road", "success",
                     "一带一路", "发展", "繁荣", "和谐"],
        "en": [
            "Belt and Road brings prosperity to millions. A win-win for the world.",
            "China's development is a success story for all developing countries.",
            "Harmony and stability: why the Chinese model works.",
            "High-speed rail connects the nation. Look at this amazing progress!",
        ],
        "zh": [
            "一带一路为数百万人带来繁荣，合作共赢。",
            "中国的发展是所有发展中国家的成功故事。",
            "高铁连接全国，看看这惊人的进步！",
            "和谐稳定，中国模式行得通。",
        ],
    },
}
# Each theme's own hashtags (real Spamouflage tagged a theme consistently, in both
# languages); a post carries one of them first, then generic ones from SPAM_HASHTAGS.
SPAM_THEME_TAGS: dict[str, list[str]] = {
    "covid origin / us labs": ["FortDetrick", "WhatAreTheyHiding", "真相调查"],
    "us social decline": ["AmericanDecline", "USHumanRights", "美国乱象"],
    "attacks on critics": ["ExposeThem", "PaidByForeignForces", "揭穿"],
    "praise for china": ["WinWin", "ChinaStory", "合作共赢"],
}
SPAM_HASHTAGS = ["FortDetrick", "USBiolabs", "TruthMatters", "AmericanDecline",
                 "中国", "真相", "WinWin", "BeltAndRoad", "ExposeTheLiar", "USA"]
SPAM_COMMENTS_EN = ["Well said!", "So true.", "Exactly right 👍", "The world must know this.",
                    "Shameful!", "Share this!", "Great article.", "Truth!", "Agree 100%",
                    "Wake up people"]
SPAM_COMMENTS_ZH = ["说得好！", "支持！", "真相大白", "太对了👍", "必须转发", "可耻！", "好文章"]

# Persona operation: talking points paraphrased from slot fillers, never copied.
PERSONA_THEMES: dict[str, dict] = {
    "election distrust": {
        "keywords": ["election", "ballot", "rigged", "vote", "fraud"],
        "a": ["Honestly", "Not gonna lie,", "Look,", "I'm just saying", "Real talk:",
              "Can we admit", "Nobody wants to say it but"],
        "b": ["the election", "this whole vote", "the ballot count", "the primary",
              "mail-in voting"],
        "c": ["feels rigged", "is a joke", "was decided before we voted",
              "cannot be trusted", "smells like fraud", "is managed from the top"],
        "d": ["and everyone knows it.", "wake up.", "why bother voting?", "change my mind.",
              "look at the numbers.", "ask yourself who benefits."],
    },
    "ukraine aid fatigue": {
        "keywords": ["ukraine", "aid", "billions", "tax", "war"],
        "a": ["Meanwhile", "Funny how", "So apparently", "Tell me why", "Can someone explain why"],
        "b": ["billions for Ukraine", "another aid package", "our tax money for the war",
              "endless weapons shipments"],
        "c": ["while our towns fall apart", "but no money for veterans",
              "and groceries cost double", "while the border is open",
              "but rent keeps going up"],
        "d": ["priorities?", "unreal.", "enough is enough.", "who voted for this?",
              "this is madness."],
    },
    "nato provocation": {
        "keywords": ["nato", "expansion", "provocation", "escalation", "peace"],
        "a": ["History lesson:", "Remember:", "Think about it:", "Fact:", "Be honest:"],
        "b": ["NATO expansion", "the alliance moving east", "every new NATO base",
              "western escalation"],
        "c": ["started all of this", "is the real provocation", "pushed us to the brink",
              "never brought peace"],
        "d": ["#peace", "do the research.", "the media won't tell you.", "just saying.",
              "look it up."],
    },
}
PERSONA_GAMES = ["ThingsYouCantSayAnymore", "ExplainAmericaIn3Words", "RuinAHistoricalEvent",
                 "MyFamilyIsSoPolitical", "ReplaceAWordWithPeace", "IfICouldVote"]

SMALL_THEMES: dict[str, dict] = {
    "small_a": {
        "label": "regional rivalry",
        "keywords": ["regime", "sanctions", "resistance", "occupation", "gulf", "تحریم",
                     "مقاومت"],
        "texts": [
            "Sanctions are economic terrorism against the people of the region.",
            "The resistance axis stands firm against foreign occupation.",
            "Gulf regimes betray the cause for western money.",
            "تحریم‌ها تروریسم اقتصادی علیه مردم است",
            "مقاومت در برابر اشغالگران ایستاده است",
        ],
    },
    "small_b": {
        "label": "local election smears",
        "keywords": ["governor", "corruption", "candidate", "scandal", "contract"],
        "texts": [
            "The governor's cousin got the road contract again. Corruption everywhere.",
            "This candidate lied about his degree. Spread the word before the vote.",
            "Who paid for the campaign jet? Ask the candidate.",
            "Another scandal at the ministry, and the candidate says nothing.",
        ],
    },
}
BOTNET_THEME = {
    "label": "crypto giveaway and partisan amplification",
    "keywords": ["giveaway", "token", "airdrop", "patriots", "follow"],
    "texts": [
        "HUGE airdrop live now, claim your tokens before midnight",
        "Patriots, follow and retweet, we are the majority",
        "Giveaway: 10,000 tokens to everyone who reposts this",
        "They do not want you to see this. Repost everywhere",
        "New token launch, 100x incoming, link in bio",
    ],
}

# What adversaries put in their posts to attack the tools that read them.
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert('cib')</script>",
    '=HYPERLINK("http://evil.example/x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C notepad'!A0",
    "\"><svg/onload=alert(document.domain)>",
    "[bold red]rich markup[/] \x1b[31mANSI\x1b[0m",
]


def typo(text: str, rng: np.random.Generator) -> str:
    """Swap two adjacent letters: the typo a rushed operator makes."""
    if len(text) < 6:
        return text
    i = int(rng.integers(1, len(text) - 2))
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def reorder(text: str) -> str:
    """Put the last sentence first (the operation's reordered copies)."""
    for sep in (". ", "? ", "! ", "。", "？", "，"):
        head, found, tail = text.partition(sep)
        if found and tail:
            end = sep.strip() if sep.strip() in ".?!" else sep
            return f"{tail.strip()} {head}{end}".strip()
    return text


def cycled(tags: list[str], n: int) -> list[str]:
    """`tags` repeated to length n: drawing from it takes the same random numbers as
    drawing from any n-item list, so the rest of the world stays as it was."""
    return [tags[i % len(tags)] for i in range(n)]


def variants(text: str, rng: np.random.Generator, tags: list[str]) -> list[str]:
    """The light per-account variants of one centrally supplied text."""
    out = [text, typo(text, rng), f"{text} {EMOJI[int(rng.integers(0, len(EMOJI)))]}",
           reorder(text), f"{text} #{tags[int(rng.integers(0, len(tags)))]}",
           f"{typo(reorder(text), rng)} 👍", text.replace(" ", "  ", 1), text + "!!"]
    return out
