"""Write the bundled sample data sets. Deterministic: running it again gives byte-identical files.

    python data/samples/make_samples.py            # writes next to this script
    python data/samples/make_samples.py OUT_DIR    # writes somewhere else (the tests compare the two)

Every sentence comes from the templates and word lists below; nothing is copied from an existing data set.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

SEED = 20261101

# ---------------------------------------------------------------------------------------------- sentiment

SUBJECTS = [
    "The film", "This movie", "The sequel", "The remake", "This documentary", "The new thriller",
    "Their latest comedy", "The animated feature", "This drama", "The director's new picture", "The horror film",
    "This period piece", "The musical", "The western", "The spy caper", "This romance", "The war epic",
    "The indie drama", "The science fiction adventure", "This family film", "The mystery", "The biopic",
]  # fmt: skip
ASPECTS = [
    "acting", "plot", "script", "soundtrack", "pacing", "camera work", "dialogue", "ending", "cast", "score",
    "direction", "visual effects", "editing", "lead performance", "story", "humour", "set design", "costumes",
    "final act", "opening scene", "supporting cast", "writing", "chemistry between the leads", "villain",
]  # fmt: skip
POSITIVE = [
    "brilliant", "superb", "wonderful", "moving", "delightful", "gripping", "charming", "excellent", "stunning",
    "clever", "heartfelt", "beautiful", "funny", "thrilling", "memorable", "inventive", "touching", "captivating",
    "masterful", "refreshing", "warm", "sharp", "gorgeous", "powerful", "joyful", "smart",
]  # fmt: skip
NEGATIVE = [
    "dull", "tedious", "awful", "clumsy", "boring", "predictable", "lifeless", "terrible", "confusing", "bland",
    "forgettable", "painful", "weak", "messy", "shallow", "irritating", "flat", "sloppy", "dreary", "pointless",
    "lazy", "tired", "hollow", "grating", "ridiculous", "cheap",
]  # fmt: skip
MILD_NEGATIVE = ["a little slow", "slightly uneven", "a bit long", "somewhat thin", "not perfect", "rough in places"]
MILD_POSITIVE = ["decent", "pleasant enough", "fine", "competent", "nice to look at", "not bad"]
INTENSIFIERS = [
    "really", "truly", "genuinely", "absolutely", "remarkably", "surprisingly", "consistently", "utterly", "quite",
    "simply",
]  # fmt: skip
POSITIVE_VERDICTS = [
    "I would happily watch it again.", "Highly recommended.", "One of the best films I have seen this year.",
    "I left the cinema smiling.", "Go and see it.", "It deserves every award it gets.", "My whole family loved it.",
    "Worth every penny.", "A real treat from start to finish.", "I can't wait to see it again with friends.",
    "Easily a favourite of mine now.", "I was hooked from the first minute.", "It stayed with me for days.",
]  # fmt: skip
NEGATIVE_VERDICTS = [
    "I want those two hours back.", "Avoid it.", "I nearly walked out halfway through.", "Not worth the ticket price.",
    "A complete waste of time.", "I fell asleep before the end.", "Skip this one.", "I regret watching it.",
    "Even the popcorn was more exciting.", "I cannot recommend it to anyone.", "What a disappointment.",
    "I checked my watch every ten minutes.", "Save your money.",
]  # fmt: skip
ACTORS = ["Mara Velden", "Tobias Krell", "Ines Okafor", "Luca Brandt", "Sana Moreau", "Piet Ander", "Alma Ruiz"]
ROLES = ["a weary detective", "a young teacher", "a retired boxer", "a ship's captain", "a shy painter", "a spy"]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _positive_sentence(rng: random.Random) -> str:
    a1, a2 = rng.sample(ASPECTS, 2)
    p1, p2 = rng.sample(POSITIVE, 2)
    subject, very, actor, role = rng.choice(SUBJECTS), rng.choice(INTENSIFIERS), rng.choice(ACTORS), rng.choice(ROLES)
    return rng.choice(
        [
            f"{subject} is {very} {p1}.",
            f"The {a1} was {p1} and the {a2} was {p2}.",
            f"{subject} has {_a(p1)} {a1} and {_a(p2)} {a2}.",
            f"I loved the {a1}; it was {very} {p1}.",
            f"From the {a1} to the {a2}, everything felt {p1}.",
            f"What {_a(p1)} film.",
            f"{actor} is {p1} as {role}.",
            f"The {a1} is {very} {p1}, and I enjoyed every minute.",
            f"{subject} gets almost everything right, especially the {a1}.",
            f"{_a(p1).capitalize()}, {p2} piece of cinema.",
            f"I did not expect the {a1} to be so {p1}.",
        ]
    )


def _negative_sentence(rng: random.Random) -> str:
    a1, a2 = rng.sample(ASPECTS, 2)
    n1, n2 = rng.sample(NEGATIVE, 2)
    subject, very, actor, role = rng.choice(SUBJECTS), rng.choice(INTENSIFIERS), rng.choice(ACTORS), rng.choice(ROLES)
    return rng.choice(
        [
            f"{subject} is {very} {n1}.",
            f"The {a1} was {n1} and the {a2} was {n2}.",
            f"{subject} has {_a(n1)} {a1} and {_a(n2)} {a2}.",
            f"I hated the {a1}; it was {very} {n1}.",
            f"From the {a1} to the {a2}, everything felt {n1}.",
            f"What {_a(n1)} film.",
            f"{actor} is {n1} as {role}.",
            f"The {a1} is {very} {n1}, and I was bored the whole time.",
            f"{subject} gets almost everything wrong, especially the {a1}.",
            f"{_a(n1).capitalize()}, {n2} mess of a movie.",
            f"I did not expect the {a1} to be so {n1}.",
        ]
    )


def _review(rng: random.Random, positive: bool) -> str:
    sentence = _positive_sentence if positive else _negative_sentence
    parts = [sentence(rng) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
    if rng.random() < 0.2:
        # A concession before the verdict keeps the task from being pure keyword spotting.
        a1, a2 = rng.sample(ASPECTS, 2)
        if positive:
            parts.insert(0, f"Although the {a1} is {rng.choice(MILD_NEGATIVE)}, the {a2} is {rng.choice(POSITIVE)}.")
        else:
            parts.insert(0, f"Although the {a1} is {rng.choice(MILD_POSITIVE)}, the {a2} is {rng.choice(NEGATIVE)}.")
    if rng.random() < 0.5:
        parts.append(rng.choice(POSITIVE_VERDICTS if positive else NEGATIVE_VERDICTS))
    return " ".join(parts)


def sentiment_rows(n: int = 400) -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    rows, seen = [], set()
    while len(rows) < n:
        positive = len(rows) % 2 == 0
        text = _review(rng, positive)
        if text in seen or not 5 <= len(text.split()) <= 40:
            continue
        seen.add(text)
        rows.append((text, "positive" if positive else "negative"))
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------- stories

NAMES = [
    ("Mira", "she"), ("Tomas", "he"), ("Ada", "she"), ("Leo", "he"), ("Nia", "she"), ("Oskar", "he"),
    ("Ruth", "she"), ("Felix", "he"), ("Ines", "she"), ("Pavel", "he"), ("Lena", "she"), ("Jonah", "he"),
    ("Yara", "she"), ("Emil", "he"), ("Clara", "she"), ("Sami", "he"),
]  # fmt: skip
PLACES = [
    "the harbour", "the market", "the old forest", "the library", "the hill above the village", "the bakery",
    "the train station", "the river bank", "the school garden", "the lighthouse", "the orchard", "the bridge",
    "the museum", "the beach", "the farm at the end of the road", "the town square",
]  # fmt: skip
OBJECTS = [
    "a red kite", "a wooden box", "a silver key", "an old map", "a blue umbrella", "a small bell", "a paper boat",
    "a lost glove", "a jar of honey", "a broken clock", "a green bottle", "a letter with no name", "a striped scarf",
    "a tiny lantern", "a basket of apples", "a wind-up toy",
]  # fmt: skip
ANIMALS = ["a grey cat", "an old dog", "a small rabbit", "a curious fox", "a noisy goose", "a tired horse", "a crow"]
WEATHER = [
    "It was raining softly.", "The sun was warm on the roofs.", "A cold wind came from the sea.",
    "Fog hung over the fields.", "The sky was clear and blue.", "Snow had fallen in the night.",
    "It was a grey and quiet morning.", "The air smelled of rain.",
]  # fmt: skip
TIMES = ["One morning", "Early on a Sunday", "Late in the afternoon", "On the first day of spring", "One evening"]
FEELINGS = ["happy", "curious", "nervous", "tired", "proud", "surprised", "calm", "excited", "worried"]
FRIENDS = ["an old neighbour", "a baker", "a fisherman", "a girl with a bicycle", "the librarian", "a farmer"]


def _story(rng: random.Random) -> str:
    name, pron = rng.choice(NAMES)
    possessive = "her" if pron == "she" else "his"
    place, other_place = rng.sample(PLACES, 2)
    thing, animal, friend = rng.choice(OBJECTS), rng.choice(ANIMALS), rng.choice(FRIENDS)
    feeling, later_feeling = rng.sample(FEELINGS, 2)
    cap_pron = pron.capitalize()
    middle = [
        f"{cap_pron} found {thing} near the gate.",
        f"{cap_pron} met {friend}, who smiled and said hello.",
        f"{animal.capitalize()} followed {'her' if pron == 'she' else 'him'} for a while.",
        f"{cap_pron} sat down and listened to the birds.",
        f"{cap_pron} asked {friend} about {thing}, but nobody knew where it came from.",
        f"On the way to {other_place}, {pron} stopped to look at the water.",
        f"{cap_pron} put {thing} in {possessive} bag and kept walking.",
        f"{cap_pron} felt {later_feeling} and a little hungry.",
        f"The path was longer than {pron} remembered.",
        f"{cap_pron} counted the boats in the harbour and then counted them again.",
        f"{friend.capitalize()} gave {'her' if pron == 'she' else 'him'} a piece of warm bread.",
        f"{cap_pron} wrote a short note and left it under a stone.",
        f"For a long time {pron} watched {animal} in the grass.",
        f"{cap_pron} hummed an old song that {possessive} grandmother used to sing.",
    ]
    endings = [
        f"When the lights came on, {name} went home, {later_feeling} and quiet.",
        f"That night {name} slept well and dreamed of {other_place}.",
        f"In the end {name} gave {thing} to {friend}, and they both laughed.",
        f"{name} decided to come back to {place} the next day.",
        f"By dinner time {name} was home again, with a story to tell.",
    ]
    opening = f"{rng.choice(TIMES)}, {name} walked to {place}. {rng.choice(WEATHER)} {cap_pron} felt {feeling}."
    body = " ".join(rng.sample(middle, rng.randint(3, 6)))
    return f"{opening} {body} {rng.choice(endings)}"


def stories_text(target_bytes: int = 220_000) -> str:
    rng = random.Random(SEED + 1)
    paragraphs: list[str] = []
    size = 0
    while size < target_bytes:
        paragraph = _story(rng)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs) + "\n"


# ---------------------------------------------------------------------------------------------- pairs

# (premise agent, general agent), (action, more general action, a conflicting action)
AGENTS = [
    ("A man", "A person"), ("A woman", "A person"), ("Two children", "Some kids"), ("An old man", "A man"),
    ("A young girl", "A child"), ("A group of friends", "Several people"), ("A teenager", "A young person"),
    ("A couple", "Two people"), ("A boy", "A child"), ("An elderly woman", "A woman"),
]  # fmt: skip
ACTIONS = [
    ("is playing a guitar", "is making music", "is sleeping in bed"),
    ("is riding a bicycle", "is on a bike", "is swimming in a pool"),
    ("is reading a newspaper", "is reading", "is dancing at a party"),
    ("is cooking pasta", "is preparing food", "is fixing a car engine"),
    ("is painting a fence", "is working with paint", "is watching television on the sofa"),
    ("is walking a dog", "is outside with an animal", "is sitting alone in a dark room"),
    ("is eating an apple", "is eating fruit", "is brushing their teeth"),
    ("is climbing a tree", "is climbing", "is lying on the floor"),
    ("is throwing a ball", "is playing with a ball", "is knitting a sweater"),
    ("is writing a letter", "is writing", "is running a marathon"),
    ("is carrying a heavy box", "is carrying something", "is asleep on a bench"),
    ("is singing on a stage", "is performing", "is sitting silently in a library"),
]
PLACES_NLI = [
    ("in a park", "outdoors", "inside a small kitchen"),
    ("on a beach", "near the sea", "in a snowy forest"),
    ("in a crowded street", "in a city", "alone on a mountain top"),
    ("in a garden", "outside", "in an office meeting"),
    ("at a train station", "in a public place", "at home in bed"),
]


def _agree(sentence: str) -> str:
    # The action phrases are written for one person; plural subjects take "are".
    if sentence.startswith(("Two ", "Some ", "Several ")):
        return sentence.replace(" is ", " are ", 1)
    return sentence


def _pair(rng: random.Random, entail: bool) -> tuple[str, str, str]:
    (agent, general), (action, broader, conflict), (place, place_general, place_conflict) = (
        rng.choice(AGENTS),
        rng.choice(ACTIONS),
        rng.choice(PLACES_NLI),
    )
    premise = _agree(f"{agent} {action} {place}.")
    if entail:
        hypothesis = rng.choice(
            [f"{general} {broader}.", f"{general} {action}.", f"{agent} {broader} {place_general}.",
             f"{general} is {place_general}.", f"Someone {broader}."]
        )  # fmt: skip
        return premise, _agree(hypothesis), "entailment"
    hypothesis = rng.choice(
        [f"{agent} {conflict}.", f"{general} {conflict}.", f"{agent} {action} {place_conflict}.",
         f"Nobody {action} {place}.", f"{agent} {conflict} {place_conflict}."]
    )  # fmt: skip
    return premise, _agree(hypothesis), "contradiction"


def pair_rows(n: int = 200) -> list[tuple[str, str, str]]:
    rng = random.Random(SEED + 2)
    rows, seen = [], set()
    while len(rows) < n:
        row = _pair(rng, entail=len(rows) % 2 == 0)
        if row[:2] not in seen:
            seen.add(row[:2])
            rows.append(row)
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------- QA

OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"), ("open", "closed"),
    ("early", "late"), ("full", "empty"), ("old", "young"), ("high", "low"), ("wet", "dry"), ("loud", "quiet"),
    ("hard", "soft"), ("strong", "weak"), ("rich", "poor"), ("clean", "dirty"), ("near", "far"), ("up", "down"),
    ("inside", "outside"), ("thick", "thin"), ("heavy", "light"), ("long", "short"), ("first", "last"),
]  # fmt: skip
PLURALS = [
    ("mouse", "mice"), ("child", "children"), ("foot", "feet"), ("tooth", "teeth"), ("man", "men"),
    ("woman", "women"), ("goose", "geese"), ("person", "people"), ("leaf", "leaves"), ("knife", "knives"),
    ("box", "boxes"), ("city", "cities"), ("bus", "buses"), ("sheep", "sheep"), ("fish", "fish"), ("wolf", "wolves"),
    ("potato", "potatoes"), ("baby", "babies"), ("church", "churches"), ("half", "halves"),
]  # fmt: skip
CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("Canada", "Ottawa"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Peru", "Lima"),
    ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("India", "New Delhi"),
    ("Australia", "Canberra"), ("Brazil", "Brasilia"), ("Mexico", "Mexico City"), ("Sweden", "Stockholm"),
    ("Austria", "Vienna"), ("Chile", "Santiago"), ("Finland", "Helsinki"), ("Hungary", "Budapest"),
]  # fmt: skip
COLOURS = [
    ("a ripe banana", "yellow"), ("grass", "green"), ("the sky on a clear day", "blue"), ("snow", "white"),
    ("coal", "black"), ("a ripe tomato", "red"), ("an orange", "orange"), ("a carrot", "orange"),
    ("milk", "white"), ("a lemon", "yellow"), ("a strawberry", "red"), ("chocolate", "brown"),
]  # fmt: skip
SOUNDS = [
    ("a cow", "moo"), ("a dog", "woof"), ("a cat", "meow"), ("a duck", "quack"), ("a sheep", "baa"),
    ("an owl", "hoot"), ("a snake", "hiss"), ("a lion", "roar"), ("a pig", "oink"), ("a horse", "neigh"),
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]  # fmt: skip


def qa_rows(n: int = 200) -> list[tuple[str, str]]:
    rng = random.Random(SEED + 3)
    rows = [(f"What is the opposite of {a}?", f"The opposite of {a} is {b}.") for a, b in OPPOSITES]
    rows += [(f"What is the plural of {a}?", f"The plural of {a} is {b}.") for a, b in PLURALS]
    rows += [(f"What is the capital of {a}?", f"The capital of {a} is {b}.") for a, b in CAPITALS]
    rows += [(f"What colour is {a}?", f"{a[0].upper() + a[1:]} is {b}.") for a, b in COLOURS]
    rows += [(f"What sound does {a} make?", f"{a[0].upper() + a[1:]} says {b}.") for a, b in SOUNDS]
    rows += [(f"What day comes after {d}?", f"The day after {d} is {DAYS[(i + 1) % 7]}.") for i, d in enumerate(DAYS)]
    rows += [
        (f"What month comes after {m}?", f"The month after {m} is {MONTHS[(i + 1) % 12]}.")
        for i, m in enumerate(MONTHS)
    ]
    seen = {p for p, _ in rows}
    while len(rows) < n:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        word, result = rng.choice([("plus", a + b), ("minus", a - b), ("times", a * b)])
        prompt = f"What is {a} {word} {b}?"
        if prompt not in seen:
            seen.add(prompt)
            rows.append((prompt, f"{a} {word} {b} is {result}."))
    rng.shuffle(rows)
    return rows[:n]


# ---------------------------------------------------------------------------------------------- headlines

TOWNS = [
    "Brookvale", "Harrowmere", "Eastfield", "Lindqvist Bay", "Marlow Cross", "Oakhaven", "Pennick", "Redwater",
    "Saltcombe", "Thornby", "Upper Ashford", "Westmoor", "Kellerton", "Ravensholm", "Fairbridge", "Glenmore",
]  # fmt: skip
OFFICIALS = ["Ina Holt", "Bram Castell", "Odile Fenwick", "Rui Matsuda", "Greta Solberg", "Kwame Asante", "Lena Petrov"]
BUILDINGS = ["library", "swimming pool", "bridge", "primary school", "health centre", "sports hall", "bus station"]
COMPANIES = ["Norvik Foods", "Calder Steel", "Brightline Software", "Aldous Textiles", "Pemberton Glass",
             "Halden Motors", "Quayside Shipping"]  # fmt: skip
SPORTS = [("football", "cup final"), ("rugby", "league final"), ("hockey", "championship"), ("basketball", "final")]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
EXHIBITS = ["Viking tools", "early photographs", "local paintings", "Roman coins", "old maps", "wartime letters"]


def _headline_row(rng: random.Random) -> tuple[str, str]:
    """A three-sentence news item and the headline it calls for (the facts of its first sentence)."""
    town, day, who = rng.choice(TOWNS), rng.choice(WEEKDAYS), rng.choice(OFFICIALS)
    kind = rng.randrange(6)
    if kind == 0:
        thing = rng.choice(BUILDINGS)
        cost, year = rng.randint(2, 30), rng.randint(2027, 2031)
        article = (
            f"The council of {town} voted on {day} to build a new {thing}. The project will cost {cost} million "
            f"euros and should open in {year}. Council leader {who} said residents had asked for it for years."
        )
        return article, f"{town} to build new {thing}"
    if kind == 1:
        company, jobs = rng.choice(COMPANIES), rng.randrange(50, 900, 10)
        cut = rng.random() < 0.5
        verb = "cut" if cut else "create"
        reason = "falling orders" if cut else "strong demand"
        because = "blamed" if cut else "pointed to"
        article = (
            f"{company} said on {day} that it will {verb} {jobs} jobs at its plant in {town}. The company "
            f"{because} {reason}. Union representative {who} said workers would be told more next week."
        )
        return article, f"{company} to {verb} {jobs} jobs in {town}"
    if kind == 2:
        sport, final = rng.choice(SPORTS)
        rival = rng.choice([t for t in TOWNS if t != town])
        a, b = rng.randint(1, 5), rng.randint(0, 4)
        if a == b:
            a += 1
        article = (
            f"{town} beat {rival} {a}-{b} in the {sport} {final} on {day}. It is the club's first title in a "
            f"decade. Coach {who} praised the players for their patience."
        )
        return article, f"{town} win {sport} {final}"
    if kind == 3:
        hours = rng.randint(6, 48)
        article = (
            f"A storm closed roads around {town} for {hours} hours on {day}. Fallen trees blocked the main routes "
            f"and several homes lost power. Emergency officer {who} asked people to stay indoors."
        )
        return article, f"Storm closes roads around {town}"
    if kind == 4:
        exhibit, months = rng.choice(EXHIBITS), rng.randint(2, 9)
        article = (
            f"The museum in {town} opened an exhibition of {exhibit} on {day}. The show runs for {months} months "
            f"and entry is free for children. Curator {who} said some pieces had never been shown before."
        )
        return article, f"{town} museum shows {exhibit}"
    fare = rng.randint(5, 25)
    article = (
        f"Bus fares in {town} will rise by {fare} percent from next month, the transport office said on {day}. "
        f"Fuel and wages cost more than last year. Passenger group leader {who} called the rise unfair."
    )
    return article, f"{town} bus fares to rise {fare} percent"


def headline_rows(n: int = 300) -> list[tuple[str, str]]:
    rng = random.Random(SEED + 4)
    rows, seen = [], set()
    while len(rows) < n:
        article, headline = _headline_row(rng)
        if article not in seen:
            seen.add(article)
            rows.append((article, headline))
    return rows


# ---------------------------------------------------------------------------------------------- chat

SHOP_SYSTEM = "You are the helpful assistant of Lantern Books, a small online bookshop. Answer briefly and kindly."
ORDER_STATES = [
    ("was sent on {day}", "It should arrive within two working days."),
    ("is being packed today", "You will get an email with the tracking link once it leaves us."),
    ("was delivered on {day}", "If you cannot find it, please check with your neighbours first."),
    ("is waiting for one book from the publisher", "We will send everything together by {day}."),
]
GENRES = ["crime novels", "poetry", "cookbooks", "travel guides", "children's books", "history books", "comics"]


def _chat_conversation(rng: random.Random) -> dict:
    kind = rng.randrange(3)
    order = rng.randint(10000, 99999)
    day, later = rng.sample(WEEKDAYS, 2)
    msgs = [{"role": "system", "content": SHOP_SYSTEM}]
    if kind == 0:
        state, advice = rng.choice(ORDER_STATES)
        msgs += [
            {"role": "user", "content": f"Hello, where is my order {order}?"},
            {"role": "assistant", "content": f"Order {order} {state.format(day=day)}. {advice.format(day=later)}"},
            {"role": "user", "content": "Thank you!"},
            {"role": "assistant", "content": "You are welcome. Enjoy your reading!"},
        ]
    elif kind == 1:
        days = rng.choice([14, 30])
        msgs += [
            {"role": "user", "content": f"Can I return a book from order {order}?"},
            {"role": "assistant", "content": f"Yes. You can return any book within {days} days of delivery."},
            {"role": "user", "content": "How do I send it back?"},
            {
                "role": "assistant",
                "content": f"Print the return label from your account page, write {order} on the parcel and take "
                "it to any post office. The refund follows within five days.",
            },
        ]
    else:
        genre = rng.choice(GENRES)
        count = rng.randint(20, 400)
        msgs += [
            {"role": "user", "content": f"Do you sell {genre}?"},
            {"role": "assistant", "content": f"Yes, we have {count} titles among our {genre} in stock right now."},
            {"role": "user", "content": "Do you deliver abroad?"},
            {"role": "assistant", "content": "We deliver within Europe. Shipping costs are shown at checkout."},
        ]
    return {"messages": msgs}


def chat_lines(n: int = 150) -> list[str]:
    import json

    rng = random.Random(SEED + 5)
    lines: list[str] = []
    while len(lines) < n:
        line = json.dumps(_chat_conversation(rng), ensure_ascii=False)
        if line not in lines:
            lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------- writing


def _write_csv(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "sentiment.csv", ["text", "label"], sentiment_rows())
    _write_csv(out / "pairs.csv", ["premise", "hypothesis", "label"], pair_rows())
    _write_csv(out / "qa.csv", ["prompt", "response"], qa_rows())
    (out / "stories.txt").write_text(stories_text(), encoding="utf-8", newline="\n")
    _write_csv(out / "headlines.csv", ["article", "headline"], headline_rows())
    (out / "chat.jsonl").write_text("\n".join(chat_lines()) + "\n", encoding="utf-8", newline="\n")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
