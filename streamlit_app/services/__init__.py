"""The dashboard's seam to the service layer: one module per screen, each function returning
plain dataclasses (never ORM objects or sessions), each action checked by the service layer
itself for the signed-in user's role.

Pages import from here only; when a capability moves (identity, billing, integrations), the
function here is rewired and the page stays as it is.
"""
