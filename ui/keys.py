"""Names of the values pages keep in st.session_state, so a key is spelled once and can be searched for."""

OWNER = "_owner"  # this browser session's owner id (ui.server.session_owner)
DATA_SOURCE = "data_source"  # the Data page's choice: a dict of RunConfig values, or absent for synthetic data
URL_LOADED = "_url_loaded"  # the controls hold settings that win over the address the Playground opens with
MATCH_BOTTOM = "match_bottom"  # the one UI-only switch: Shared-Bottom's width matched to MMoE's parameters
RUN_ID = "run_id"  # the run the Playground shows
OWNER_KEYS = "_owner_keys"  # run id or "study:<id>" -> owner secret this browser holds (ui.access)
UPLOADS = "_uploads"  # upload:<id> -> file name, for the uploads this session made or owns a run of (ui.access)
ADMIN = "_admin"  # this session typed the admin token (MMOE_ADMIN_TOKEN)
AUTHED = "_authed"  # this session typed the app password (MMOE_PASSWORD)
