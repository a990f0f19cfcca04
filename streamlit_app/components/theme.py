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
</style>"""
