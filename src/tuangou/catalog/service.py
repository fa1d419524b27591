"""Stores, deals and the capacity calendar: the catalog's commands and reads, gathered under one name.

Callers import this module (`from tuangou.catalog import service as catalog`); the code lives in its
sub-modules, one story each:

- `views.py`: the views and the order path's `DealContext`;
- `stores.py`: stores and their facts;
- `deals.py`: creating, publishing and delisting deals;
- `listing.py`: reads of deals (one deal, the listing with availability, the calendar);
- `caps.py`: setting bucket caps from capacity plans and governance;
- `facts.py`: plain deal facts for other capabilities;
- `counters.py`: the hot path's atomic counters (`reserve`, `release_reserved`, `confirm_sold`, ...);
- `live.py`: which deals, merchants and time zones are live.
"""

from __future__ import annotations

from tuangou.catalog.caps import apply_cap, apply_caps
from tuangou.catalog.counters import (
    buckets_from,
    buckets_of,
    confirm_held,
    confirm_sold,
    deal_columns,
    hold,
    move_sold,
    pause_date,
    paused_dates,
    release_reserved,
    release_reserved_many,
    release_sold,
    reopen_recovered,
    reserve,
    reserve_for_update,
    room_on,
    snapshot,
    snapshot_query,
)
from tuangou.catalog.deals import (
    PUBLISH_HORIZON_DAYS,
    check_may_list,
    create_deal,
    delist,
    delist_deal,
    delist_merchant_deals,
    own_deal,
    publish_deal,
)
from tuangou.catalog.facts import deal_facts, deal_facts_many, deal_homes, deal_ids, live_deals
from tuangou.catalog.listing import (
    bucket_key,
    deal_calendar,
    deal_category,
    deal_context,
    get_deal,
    list_deals,
)
from tuangou.catalog.live import live_deal_ids, live_deals_of, live_merchant_ids, live_timezones
from tuangou.catalog.stores import create_store, get_store, list_stores, store_category, store_facts
from tuangou.catalog.views import DealContext, DealView, StoreView

__all__ = ["PUBLISH_HORIZON_DAYS", "DealContext", "DealView", "StoreView", "apply_cap", "apply_caps",
           "bucket_key", "buckets_from", "buckets_of", "check_may_list", "confirm_held", "confirm_sold",
           "create_deal", "create_store", "deal_calendar", "deal_category", "deal_columns", "deal_context",
           "deal_facts", "deal_facts_many", "deal_homes", "deal_ids", "delist", "delist_deal",
           "delist_merchant_deals", "get_deal", "get_store", "hold", "list_deals", "list_stores",
           "live_deal_ids", "live_deals", "live_deals_of", "live_merchant_ids", "live_timezones", "move_sold",
           "own_deal", "pause_date", "paused_dates", "publish_deal", "release_reserved", "release_reserved_many",
           "release_sold", "reopen_recovered", "reserve", "reserve_for_update", "room_on", "snapshot",
           "snapshot_query", "store_category", "store_facts"]
