"""Names of the values pages keep in st.session_state, so a key is spelled once and can be searched for.

Widgets whose value is a RunConfig field use the field's name as their key (ui/controls.py); every other key
a page reads or writes in st.session_state is named here. A leading underscore marks page bookkeeping that no
widget shows.
"""

# --- sessions (ui/server.py) ---
OWNER = "_owner"  # this browser session's owner id (ui.server.session_owner)

# --- Playground ---
DATA_SOURCE = "data_source"  # the Data page's choice: a dict of RunConfig values, or absent for synthetic data
URL_LOADED = "_url_loaded"  # the controls hold settings that win over the address the Playground opens with
URL_WARNINGS = "_url_warnings"  # what the address asked for and could not get, shown once
MATCH_BOTTOM = "match_bottom"  # the one UI-only switch: Shared-Bottom's width matched to MMoE's parameters
RUN_ID = "run_id"  # the run the Playground shows
START_ERROR = "_start_error"  # why Start did not start, shown once beside the button
LIVE = "_live"  # the shown run was still training at the last full page run
REFRESH_MODE = "_refresh_mode"  # the live panel's refresh mode (mmoe_core.views.refresh_mode) when drawn
CHART_WARM = "_chart_warm"  # the hidden chart that loads the chart library: None, "drawn" or "done"
WARMUP_ARMED = "_warmup_armed"  # the page has run once, so the chart warm-up may start

# --- Runs ---
RUNS_OPEN = "runs_open"  # the run opened on the Runs page (also its selectbox's key)
RUNS_PICKED = "_runs_picked"  # the table row picked last, so a new pick opens its run once
RUNS_ERROR = "_runs_error"
RUNS_URL_SEEN = "_runs_url_seen"  # the (run, key) of the address read last, so a link opens once  # why Run again failed, shown once
RUNS_CONFIRM = "_runs_confirm"  # Delete was pressed: ask to confirm
RUNS_CLOSING = "_runs_closing"  # the run was deleted from the dialog: close it
RUNS_LIVE = "_runs_live"  # the opened run was still training at the last full page run
GO_PLAYGROUND = "_go_playground"  # switch to the Playground on the next run (Open in Playground, Run again)

# --- Data ---
DATA_CHOICE = "data_choice"  # which source the Data page shows (its radio's key)
DATA_USED = "_data_used"  # a "Train on ..." button was pressed: say so once
UPLOAD_ID = "_upload_id"  # the file id of the upload checked last, so each upload is read once
UPLOAD = "_upload"  # that upload, read and stored, or None when it was refused
UPLOAD_ERROR = "_upload_error"  # why it was refused

# --- Experiments ---
EXP_PREFIX = "exp_"  # the page's widget keys; the Playground uses the bare RunConfig field names for its own
EXP_OPEN = EXP_PREFIX + "open"  # the study shown (also its selectbox's key)
EXP_PRESET = EXP_PREFIX + "preset"  # the preset chosen (its selectbox's key)
EXP_URL_DONE = "_exp_url_done"  # the address's ?study= was read once this session
EXP_WARNING = "_exp_warning"  # what the address asked for and could not get, shown once
EXP_ERROR = "_exp_error"  # why Start did not start, shown once
EXP_LIVE = "_exp_live"  # the shown study was still running at the last full page run
EXP_SHOWN_STATUS = "_exp_shown_status"  # the shown study's status when "Study shown" was last drawn

# --- Learn ---
LEARN_MODEL = "learn_model"  # the model whose diagram is drawn (its selectbox's key)

# --- Compare ---
CMP_RUNS = "cmp_runs"  # the run ids compared (its multiselect's key)
CMP_MODELS = "cmp_models"  # the models drawn (its pills' key)

# --- Lesson ---
LESSON_STEP = "lesson_step"  # the step shown (its segmented control's key)
LESSON_GO = "_lesson_go"  # a step's settings were loaded: switch to the Playground on this run

# --- Present ---
PRESENT_LIVE = "_present_live"  # the presented run was still training at the last full page run

# --- Access (ui/access.py) ---
OWNER_KEYS = "_owner_keys"  # run id or "study:<id>" -> owner secret this browser holds (ui.access)
UPLOADS = "_uploads"  # upload:<id> -> file name, for the uploads this session made or owns a run of (ui.access)
ADMIN = "_admin"  # this session typed the admin token (MMOE_ADMIN_TOKEN)
AUTHED = "_authed"  # this session typed the app password (MMOE_PASSWORD)
SWEEP_ON = "sweep_on"  # the Playground trains at several p at once (RunConfig.sweep)
SWEEP_VALUES = "sweep_values"  # the p values it sweeps
