"""Words the pages show from data (statuses, kinds, tiers, categories), marked for the catalogue.
Templates translate them with `_(value)`; a value missing here is shown as it is."""

from __future__ import annotations

from tuangou.web.i18n import N_

WORDS = [
    # availability and deal / order / voucher / payment statuses
    N_("on_sale"), N_("sold_out"), N_("delisted"), N_("draft"), N_("published"),
    N_("reserved"), N_("paid"), N_("expired"), N_("cancelled"), N_("refunded"), N_("completed"), N_("held"),
    N_("issued"), N_("redeemed"), N_("succeeded"), N_("failed"),
    # disputes, appeals, queue items, coupons
    N_("open"), N_("contested"), N_("escalated"), N_("confirmed"), N_("rejected"), N_("withdrawn"),
    N_("upheld"), N_("pending"), N_("approved"), N_("false_claim"), N_("brushing"), N_("available"), N_("used"),
    N_("revoked"),
    N_("light"), N_("medium"), N_("severe"),
    N_("late_fulfilment"), N_("cannot_fulfil_today"), N_("cannot_fulfil"), N_("quality_problem"),
    N_("not_as_described"),
    # roles
    N_("ops"), N_("leader"), N_("supplier"), N_("buyer"), N_("merchant"),
    # penalties
    N_("fine"), N_("deposit_deduction"), N_("promotion_ban"), N_("listing_suspension"), N_("removal"),
    # campaigns: statuses and the buyer's progress steps
    N_("collecting"), N_("formed"), N_("procuring"), N_("shipping"), N_("delivered"), N_("closed"),
    N_("joined"), N_("group_formed"), N_("procured"), N_("shipped"), N_("at_pickup"), N_("collected"),
    N_("group_failed"), N_("group_cancelled"),
    # capacity disruptions
    N_("chef_on_leave"), N_("ingredients_short"), N_("machine_broken"),
    # ops decisions
    N_("approve"), N_("reject"),
    # after-sales tickets and their remedies
    N_("proposed"), N_("chosen"), N_("resolved"), N_("return"), N_("reship"), N_("discount"),
    # store categories and merchant statuses
    N_("catering"), N_("fresh"), N_("beverage"), N_("bakery"), N_("entertainment"), N_("fitness"), N_("beauty"),
    N_("show"), N_("other"), N_("active"), N_("suspended"), N_("removed"),
]
