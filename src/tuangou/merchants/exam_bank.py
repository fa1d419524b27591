"""The compliance exam shipped with the product (A12), in both console languages.

Loaded into `exam_questions` on first use when the bank has never held a question (`seed_key` is unique,
so two processes loading at once insert each question once). From then on it is ops' bank: they add
and retire questions through the API. The questions test the principles of seed 000, not the policy's
current numbers, so a policy change does not make an answer wrong.
"""

from __future__ import annotations

LANGUAGES = ("zh-CN", "en")

# (key, correct option index, {language: (question, options)})
DEFAULT_QUESTIONS: list[tuple[str, int, dict[str, tuple[str, list[str]]]]] = [
    ("safe-sales", 1, {
        "zh-CN": ("门店每天最多接待 50 人,活动持续 10 天。按“安全销量 = 日接待量 × 活动天数 × 0.8”,最多卖多少张券?",
                  ["500 张", "400 张", "600 张"]),
        "en": ("A store serves at most 50 a day; the promotion runs 10 days. With safe sales = daily reception x "
               "days x 0.8, how many vouchers may it sell?", ["500", "400", "600"])}),
    ("red-line", 2, {
        "zh-CN": ("离售罄红线只剩 10 份,库存又补不上,应该怎么做?",
                  ["继续卖,到时候再说", "自己把上限调高", "停止售卖,或带证据(采购单照片)申请增加库存"]),
        "en": ("Ten units are left before the cap and stock cannot grow. What do you do?",
               ["keep selling and see", "raise the cap yourself",
                "stop the listing, or ask ops to approve more stock with evidence (a purchase order photo)"])}),
    ("disruption", 0, {
        "zh-CN": ("今天厨师请假,出餐能力减半,应该怎么做?",
                  ["在系统里登记临时状况,让今天的可售上限随之下调", "照常售卖", "明天多卖一些补回来"]),
        "en": ("The chef is on leave today and the kitchen can serve half as much. What do you do?",
               ["report the disruption so today's sellable cap falls with it", "sell as usual",
                "sell more tomorrow to make up"])}),
    ("stock-evidence", 1, {
        "zh-CN": ("想提高库存(可售数量),需要什么?",
                  ["直接改数字即可", "说明理由并提供证据(如采购单照片),由平台审核通过", "给买家打个电话"]),
        "en": ("What does raising your stock (units on sale) need?",
               ["nothing, just edit the number", "a reason and evidence (e.g. a purchase order photo), approved by ops",
                "a phone call to a buyer"])}),
    ("false-claim", 2, {
        "zh-CN": ("申请增加库存时提供虚假证据,会怎样?",
                  ["没有影响", "只是申请被拒绝", "扣分并暂停上新,情节严重的清退"]),
        "en": ("What happens after a false claim in a stock increase request?",
               ["nothing", "only the request is refused",
                "points are deducted and new listings are suspended; serious cases are removed"])}),
    ("pays-first", 1, {
        "zh-CN": ("因超卖导致买家无法按时消费,平台会怎么做?",
                  ["让买家等商家退款", "平台先行赔付买家,再向商家追偿", "不处理"]),
        "en": ("A buyer cannot be served because the store over-sold. What does the platform do?",
               ["the buyer waits for the store's refund", "it compensates the buyer at once and recovers the money "
                "from the merchant", "nothing"])}),
    ("presale-audit", 0, {
        "zh-CN": ("上线“买一送一”之类的大促之前,需要做什么?",
                  ["申报人员、食材采购量、接待量、设备每小时产能和营业时间,通过产能审核", "提高价格", "什么都不用做"]),
        "en": ("What must happen before a large promotion such as buy-one-get-one goes live?",
               ["declare staff, ingredient purchases, seats, equipment throughput per hour and opening hours, and "
                "pass the capacity audit", "raise the price", "nothing"])}),
    ("recovery", 1, {
        "zh-CN": ("被限流后,怎样恢复流量?",
                  ["交一笔费用", "连续一段时间没有超卖,并通过合规经营考试", "等到月底自动恢复"]),
        "en": ("How are traffic limits lifted?",
               ["by paying a fee", "a run of days without over-selling and a passed compliance exam",
                "they lift by themselves at the end of the month"])}),
    ("repeat", 0, {
        "zh-CN": ("短期内多次超卖,会怎样?", ["处罚升级:限流时间更长,再犯暂停上新", "和第一次一样", "不会有影响"]),
        "en": ("What follows repeated over-selling within a short time?",
               ["escalation: longer limits, then a suspension of new listings", "the same as the first time",
                "nothing"])}),
    ("daily-review", 2, {
        "zh-CN": ("以下哪项最能帮助避免超卖?", ["活动期间不看后台", "把上限设得尽量高", "每天复盘销量和库存预警,按实际产能调整"]),
        "en": ("Which habit best prevents over-selling?",
               ["not looking at the console during a promotion", "setting the cap as high as possible",
                "a daily review of sales and stock warnings, adjusting to real capacity"])}),
]
