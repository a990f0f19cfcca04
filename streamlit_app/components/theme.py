"""Page-wide CSS, injected once by the router: the runs table and the running badge's pulse."""

DASHBOARD_CSS = """<style>
@keyframes orbin-pulse { 0%, 100% { opacity: 1 } 50% { opacity: .55 } }
table.orbin-runs { width: 100%; border-collapse: collapse; font-size: .9rem; }
table.orbin-runs th { text-align: left; font-weight: 600; padding: .5rem .75rem;
  border-bottom: 1px solid rgba(128, 128, 128, .35); white-space: nowrap; }
table.orbin-runs td { padding: 0; border-bottom: 1px solid rgba(128, 128, 128, .18); }
table.orbin-runs td a { display: block; padding: .45rem .75rem; color: inherit;
  text-decoration: none; white-space: nowrap; }
table.orbin-runs tr:hover td { background: rgba(2, 132, 199, .07); }
table.orbin-runs code { font-size: .8rem; background: transparent; padding: 0; }
.orbin-graph { display: flex; flex-direction: column; align-items: flex-start; gap: .15rem; }
.orbin-step { border: 1px solid rgba(128, 128, 128, .35); border-radius: 8px; padding: .4rem .7rem;
  display: flex; flex-direction: column; min-width: 12rem; }
.orbin-step small { opacity: .7; }
.orbin-trigger { border-color: #0284c7; }
.orbin-arrow { padding-left: 1.2rem; opacity: .6; }
.orbin-branches { display: flex; gap: .75rem; margin-top: .4rem; }
.orbin-branches em { font-size: .8rem; opacity: .7; display: block; }
.orbin-card { border: 1px solid rgba(128, 128, 128, .3); border-radius: 10px; padding: .8rem 1rem; }
.orbin-bars { display: flex; align-items: flex-end; gap: 3px; }
.orbin-bar { flex: 1; display: flex; flex-direction: column; align-items: stretch;
  justify-content: flex-end; height: 100%; }
.orbin-bar span { background: #0284c7; border-radius: 3px 3px 0 0; }
.orbin-bar small { text-align: center; font-size: .65rem; opacity: .6; }
.orbin-bars-caption { font-size: .8rem; opacity: .7; }
</style>"""
