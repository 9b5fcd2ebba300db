"""The application's name and the permissions of its public API, which the services hand
to the chassis (it has no domain names of its own).

The name is the bearer realm clients are challenged with and the service namespace of
every trace. Tokens grant the permissions as delegated scopes or app roles (see
chassis/auth.py); ingestion and delivery check the same ones, and a tenant's app
registration publishes them, so renaming one changes the API (AUTH_*_PERMISSION and
AUTH_ADMIN_ROLE rename them for one deployment).
"""

from __future__ import annotations

APPLICATION = "drone-delivery"

WRITE_PERMISSION = "Deliveries.Write"  # POST, PATCH, DELETE /api/deliveryrequests...
READ_PERMISSION = "Deliveries.Read"  # GET /api/deliveries/{id}[/status]
ADMIN_ROLE = "Deliveries.Admin"  # sees and acts for every owner

# The four together, as the chassis takes them: `PermissionNames(**ACCESS)`.
ACCESS = {
    "realm": APPLICATION,
    "write": WRITE_PERMISSION,
    "read": READ_PERMISSION,
    "admin": ADMIN_ROLE,
}
