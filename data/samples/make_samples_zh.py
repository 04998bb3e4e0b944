"""Write the bundled Chinese sample data sets. Deterministic: running it again gives byte-identical files.

    python data/samples/make_samples_zh.py            # writes next to this script
    python data/samples/make_samples_zh.py OUT_DIR    # writes somewhere else (the tests compare the two)

Every sentence comes from the templates and word lists below, written for this project; nothing is copied from an
existing data set. Shop, place and people names are invented. The column headers are Chinese on purpose: the
column guessing must recognise them.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from make_samples import _write_csv  # the sibling script (its folder is on sys.path when run as a script)

SEED = 20261201

# ---------------------------------------------------------------------------------------------- sentiment

# Four domains Chinese review data usually comes from: online shopping, restaurants, hotels and films.
DOMAINS = {
    "shopping": {
        "things": ["这款耳机", "这件外套", "这台电饭煲", "这双跑鞋", "这个充电宝", "这本书", "这套餐具", "这款手机壳"],
        "aspects": ["质量", "做工", "包装", "手感", "音质", "尺码", "续航", "物流", "客服", "颜色"],
        "good": ["很好", "不错", "超出预期", "挺让人满意的", "没得挑", "比想象中好"],
        "bad": ["很差", "太让人失望了", "跟描述完全不符", "很不走心", "一般般", "让人窝火"],
        "good_end": ["会回购的。", "推荐给大家。", "五星好评！", "已经推荐给同事了。", "这个价位很值。"],
        "bad_end": ["已经申请退货了。", "不会再买了。", "大家慎重下单。", "差评。", "钱花得太冤了。"],
    },
    "restaurant": {
        "things": ["这家火锅店", "楼下的面馆", "这家烤鸭店", "新开的茶餐厅", "这家川菜馆", "这家早餐铺"],
        "aspects": ["味道", "服务", "上菜速度", "环境", "分量", "卫生", "性价比", "汤底"],
        "good": ["很好", "没得说", "让人惊喜", "无可挑剔", "比想象中好很多", "相当不错"],
        "bad": ["很一般", "差得离谱", "让人失望", "糟糕透了", "实在不敢恭维", "一言难尽"],
        "good_end": ["下次还会再来。", "强烈推荐。", "朋友聚餐首选。", "排队也值得。"],
        "bad_end": ["再也不来了。", "劝大家绕道。", "吃完肚子还不舒服。", "浪费了一顿饭钱。"],
    },
    "hotel": {
        "things": ["这家酒店", "江边的民宿", "车站旁的宾馆", "这家度假村", "市中心的公寓酒店"],
        "aspects": ["房间", "床品", "前台服务", "隔音", "早餐", "位置", "卫生", "空调"],
        "good": ["很好", "让人满意", "无可挑剔", "超出预期", "非常不错", "比照片上还好"],
        "bad": ["很差", "一言难尽", "名不副实", "让人失望", "糟糕透了", "实在不敢恭维"],
        "good_end": ["下次出差还住这里。", "推荐入住。", "住得很安心。", "性价比很高。"],
        "bad_end": ["一晚上没睡好。", "不推荐入住。", "再也不会订了。", "体验极差。"],
    },
    "film": {
        "things": ["这部电影", "这部国产动画", "这部悬疑片", "这部喜剧", "这部纪录片", "这部续集"],
        "aspects": ["剧情", "演技", "配乐", "节奏", "画面", "结局", "台词", "特效"],
        "good": ["很精彩", "非常用心", "出乎意料地好", "值得回味", "可圈可点", "无可挑剔"],
        "bad": ["很糟糕", "乏善可陈", "毫无新意", "让人失望", "一塌糊涂", "尴尬得不行"],
        "good_end": ["值得二刷。", "强烈推荐去影院看。", "看完久久不能平静。", "今年最喜欢的一部。"],
        "bad_end": ["浪费了两个小时。", "看到一半就想走。", "电影票钱白花了。", "别去看了。"],
    },
}
ADVERBS = ["真的", "确实"]
OPENERS = ["说实话，", "总的来说，", "朋友推荐的，", "", "", ""]


def _clause(rng: random.Random, d: dict, aspect: str, positive: bool) -> str:
    word = rng.choice(d["good"] if positive else d["bad"])
    if rng.random() < 0.3 and not word.startswith("实在"):
        return f"{aspect}{rng.choice(ADVERBS)}{word}"
    return f"{aspect}{word}"


def _review(rng: random.Random, positive: bool) -> str:
    d = DOMAINS[rng.choice(sorted(DOMAINS))]
    thing = rng.choice(d["things"])
    end = rng.choice(d["good_end"] if positive else d["bad_end"])
    one, two = rng.sample(d["aspects"], 2)
    if rng.random() < 0.25:
        # A concession: one clause of the other polarity, then the verdict, so the task is not keyword spotting.
        return f"{thing}虽然{_clause(rng, d, one, not positive)}，但是{_clause(rng, d, two, positive)}，{end}"
    first = _clause(rng, d, one, positive)
    if rng.random() < 0.3:
        return f"{rng.choice(OPENERS)}{thing}{first}。{end}"
    joiner = rng.choice(["，", "，而且", "，"])
    return f"{rng.choice(OPENERS)}{thing}{first}{joiner}{_clause(rng, d, two, positive)}。{end}"


def sentiment_rows(n: int = 400) -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(rows) < n:
        positive = len(rows) % 2 == 0
        text = _review(rng, positive)
        if text in seen:
            continue
        seen.add(text)
        rows.append((text, "正面" if positive else "负面"))
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------- headlines

CITIES = ["青禾市", "临江市", "南屿市", "白川市", "云岭市", "东港市", "松原市", "海宁市"]
MONTHS = list(range(1, 13))


def _metro(rng: random.Random, city: str) -> tuple[str, str]:
    line, km, stations = rng.randint(2, 9), rng.randint(12, 38), rng.randint(10, 26)
    day = rng.randint(1, 28)
    article = (
        f"{rng.choice(MONTHS)}月{day}日上午，{city}地铁{line}号线正式开通运营。该线路全长{km}公里，共设车站{stations}座，"
        f"串联起老城区和高铁站。运营方表示，开通初期行车间隔为{rng.randint(4, 8)}分钟，早晚高峰将视客流加密班次。"
        f"不少市民一早赶来体验，称通勤时间至少缩短了半小时。"
    )
    return article, f"{city}地铁{line}号线开通运营 全长{km}公里设站{stations}座"


def _weather(rng: random.Random, city: str) -> tuple[str, str]:
    kind, color = rng.choice([("暴雨", "橙色"), ("暴雨", "黄色"), ("大风", "蓝色"), ("高温", "橙色"), ("寒潮", "蓝色")])
    advice = {
        "暴雨": "市民尽量减少外出，远离低洼路段",
        "大风": "市民注意加固阳台花盆等易坠物品",
        "高温": "户外作业人员避开午后时段",
        "寒潮": "市民及时添衣，注意防寒保暖",
    }[kind]
    article = (
        f"{city}气象台{rng.randint(5, 22)}时发布{kind}{color}预警信号。预计未来{rng.randint(12, 48)}小时内，"
        f"全市大部分地区将出现{kind}天气。气象部门提醒{advice}。"
        f"目前各相关部门已进入应急值守状态。"
    )
    return article, f"{city}发布{kind}{color}预警 提醒{advice.split('，')[0]}"


def _library(rng: random.Random, city: str) -> tuple[str, str]:
    hour, seats = rng.choice([21, 22]), rng.randint(80, 300)
    article = (
        f"记者从{city}图书馆获悉，自下月起，该馆自习区的开放时间将延长至晚上{hour}点，周末照常开放。"
        f"馆方表示，此举主要是回应读者尤其是备考学生的呼声。调整后，馆内还将新增{seats}个自习座位，"
        f"并开通线上预约。"
    )
    return article, f"{city}图书馆自习区延长开放至{hour}点 新增{seats}个座位"


def _marathon(rng: random.Random, city: str) -> tuple[str, str]:
    runners = rng.randint(8, 30) * 1000
    article = (
        f"{rng.choice(MONTHS)}月{rng.randint(1, 28)}日清晨，{city}马拉松鸣枪开跑，来自各地的{runners}名跑者参赛。"
        f"赛道沿江而行，途经多处历史街区。经过激烈角逐，男子组冠军以2小时{rng.randint(8, 20)}分的成绩率先冲线。"
        f"赛事期间，沿途近千名志愿者为选手提供补给和医疗保障。"
    )
    return article, f"{city}马拉松开跑 {runners}名跑者沿江竞速"


def _harvest(rng: random.Random, city: str) -> tuple[str, str]:
    crop = rng.choice(["水稻", "小麦", "柑橘", "茶叶", "玉米"])
    rise = rng.randint(3, 15)
    article = (
        f"眼下正值{crop}收获季，{city}各乡镇的田间地头一片忙碌。据当地农业部门统计，今年全市{crop}种植面积稳中有增，"
        f"预计总产量比去年增长{rise}%。技术人员介绍，新品种的推广和病虫害的及时防治是增产的主要原因。"
    )
    return article, f"{city}{crop}喜获丰收 预计产量增长{rise}%"


def _school(rng: random.Random, city: str) -> tuple[str, str]:
    school = rng.choice(["第一中学", "实验小学", "第三中学", "外国语学校"])
    teams = rng.randint(20, 60)
    article = (
        f"近日，{city}{school}举行一年一度的秋季运动会，全校{teams}个班级的学生参加了田径、跳绳和拔河等比赛。"
        f"开幕式上，各班方阵依次入场，展示了精心准备的口号和队形。校长在致辞中鼓励同学们享受运动、挑战自我。"
    )
    return article, f"{city}{school}举办秋季运动会 {teams}个班级同场竞技"


def _product(rng: random.Random, city: str) -> tuple[str, str]:
    company = rng.choice(["星河科技", "远帆电子", "青木智能", "恒光电器"])
    product = rng.choice(["扫地机器人", "智能手表", "电动自行车", "空气净化器"])
    price = rng.randint(9, 39) * 100 - 1
    article = (
        f"总部位于{city}的{company}昨日发布了新一代{product}，售价{price}元。与上一代相比，新品的续航提升明显，"
        f"并加入了语音控制功能。公司负责人表示，新品将于下周在各大电商平台开售。"
    )
    return article, f"{company}发布新款{product} 售价{price}元"


def _park(rng: random.Random, city: str) -> tuple[str, str]:
    area = rng.randint(5, 60)
    article = (
        f"经过一年多的建设，{city}滨河公园于本周末正式对市民开放。公园占地约{area}公顷，建有步道、儿童游乐区和"
        f"观鸟平台。园内保留了原有的老树和湿地，栽种了上百种本地植物。附近居民表示，以后散步又多了一个好去处。"
    )
    return article, f"{city}滨河公园正式开放 占地约{area}公顷"


STORIES = (_metro, _weather, _library, _marathon, _harvest, _school, _product, _park)


def headline_rows(n: int = 160) -> list[tuple[str, str]]:
    rng = random.Random(SEED + 1)
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(rows) < n:
        story = STORIES[len(rows) % len(STORIES)]
        article, title = story(rng, rng.choice(CITIES))
        if title in seen:
            continue
        seen.add(title)
        rows.append((article, title))
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------- writing


def write_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "sentiment_zh.csv", ["文本", "标签"], sentiment_rows())
    _write_csv(out / "headlines_zh.csv", ["正文", "标题"], headline_rows())


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
