"""The identity services over gRPC: convert, delegate, convert back."""

from __future__ import annotations

from typing import Any

from relais.v1 import (
    admin_user_pb2,
    admin_user_pb2_grpc,
    api_key_pb2,
    api_key_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    role_pb2,
    role_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)

from server.convert import timestamp
from server.identity.api_keys import ApiKeys
from server.identity.roles import RoleAdministration
from server.identity.service import IdentityService, IssuedTokens, NewAccount
from server.identity.values import ApiKeyView, ClientInfo, PermissionView, RoleView, SessionView, UserView
from server.interceptors.call import current_call, current_principal
from server.messages import say


def client_info(context: Any) -> ClientInfo:
    metadata = tuple(context.invocation_metadata() or ())
    # The HTTP client's agent (forwarded by the bridge) before the gRPC client's own.
    agents = {key: value for key, value in metadata if isinstance(value, str)}
    agent = agents.get("x-forwarded-user-agent") or agents.get("user-agent", "")
    return ClientInfo(ip_address=current_call().client_ip, user_agent=agent)


def user_message(view: UserView) -> user_pb2.User:
    return user_pb2.User(
        id=view.id,
        email=view.email,
        username=view.username,
        name=view.full_name,
        full_name=view.full_name,
        trigramme=view.trigramme or "",
        is_active=view.is_active,
        is_admin=view.is_admin,
        roles=view.role_names,
        permissions=sorted(view.permissions),
        created_at=timestamp(view.created_at),
        last_login=timestamp(view.last_login),
    )


def tokens_message(issued: IssuedTokens) -> auth_pb2.LoginResponse:
    return auth_pb2.LoginResponse(
        access_token=issued.access_token,
        token_type="bearer",
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        csrf_token=issued.csrf_token,
        session_id=issued.session_id,
        user=user_message(issued.user),
    )


def account(request: Any) -> NewAccount:
    return NewAccount(
        email=request.email,
        password=request.password,
        full_name=request.full_name or request.name,
        trigramme=request.trigramme,
        username=request.username,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def Login(self, request: auth_pb2.LoginRequest, context: Any) -> auth_pb2.LoginResponse:
        login = request.user or request.username or request.email
        issued = await self._identity.login(login=login, password=request.password, client=client_info(context))
        return tokens_message(issued)

    async def Register(self, request: auth_pb2.RegisterRequest, context: Any) -> user_pb2.User:
        return user_message(await self._identity.register(account(request)))

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Any) -> auth_pb2.LoginResponse:
        issued = await self._identity.refresh(refresh_token=request.refresh_token, principal=current_call().principal)
        return tokens_message(issued)

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Any) -> auth_pb2.LogoutResponse:
        ended = await self._identity.logout(current_principal())
        return auth_pb2.LogoutResponse(message=say("signed_out") if ended else say("no_session"))

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: Any) -> user_pb2.User:
        return user_message(await self._identity.get_profile(current_principal()))


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def RegisterUser(self, request: user_pb2.RegisterUserRequest, context: Any) -> user_pb2.User:
        return user_message(await self._identity.register(account(request)))

    async def GetProfile(self, request: user_pb2.GetProfileRequest, context: Any) -> user_pb2.User:
        return user_message(await self._identity.get_profile(current_principal()))

    async def UpdateProfile(self, request: user_pb2.UpdateProfileRequest, context: Any) -> user_pb2.User:
        def optional(name: str) -> str | None:
            return getattr(request, name) if request.HasField(name) else None

        view = await self._identity.update_profile(
            current_principal(),
            email=optional("email"),
            full_name=optional("full_name") if request.HasField("full_name") else optional("name"),
            trigramme=optional("trigramme"),
            username=optional("username"),
        )
        return user_message(view)

    async def ChangePassword(
        self, request: user_pb2.ChangePasswordRequest, context: Any
    ) -> user_pb2.ChangePasswordResponse:
        revoked = await self._identity.change_password(
            current_principal(), current=request.current_password, new=request.new_password
        )
        return user_pb2.ChangePasswordResponse(message=say("password_changed"), sessions_revoked=revoked)


class AdminUserServicer(admin_user_pb2_grpc.AdminUserServiceServicer):
    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def ListUsers(
        self, request: admin_user_pb2.ListUsersRequest, context: Any
    ) -> admin_user_pb2.ListUsersResponse:
        page = await self._identity.list_users(
            skip=request.skip,
            offset=request.offset,
            limit=request.limit,
            search=request.search,
            is_active=request.is_active if request.HasField("is_active") else None,
            sort_by=request.sort_by,
            descending=request.sort_order != admin_user_pb2.SORT_ORDER_ASC,
        )
        return admin_user_pb2.ListUsersResponse(
            total=page.total,
            skip=page.skip,
            limit=page.limit,
            items=[user_message(view) for view in page.items],
            has_more=page.has_more,
        )

    async def GetUser(self, request: admin_user_pb2.GetUserRequest, context: Any) -> user_pb2.User:
        return user_message(await self._identity.get_user(request.id))

    async def DeleteUser(
        self, request: admin_user_pb2.DeleteUserRequest, context: Any
    ) -> admin_user_pb2.DeleteUserResponse:
        await self._identity.delete_user(current_principal(), request.id)
        return admin_user_pb2.DeleteUserResponse()

    async def SetUserRole(self, request: admin_user_pb2.SetUserRoleRequest, context: Any) -> user_pb2.User:
        return user_message(await self._identity.set_user_role(current_principal(), request.id, request.role))

    async def AssignRole(
        self, request: admin_user_pb2.AssignRoleRequest, context: Any
    ) -> admin_user_pb2.AssignRoleResponse:
        await self._identity.assign_role(current_principal(), request.user_id, request.role_id)
        return admin_user_pb2.AssignRoleResponse(message=say("role_assigned"))

    async def RemoveRole(
        self, request: admin_user_pb2.RemoveRoleRequest, context: Any
    ) -> admin_user_pb2.RemoveRoleResponse:
        await self._identity.remove_role(current_principal(), request.user_id, request.role_id)
        return admin_user_pb2.RemoveRoleResponse()

    async def ActivateUser(
        self, request: admin_user_pb2.ActivateUserRequest, context: Any
    ) -> admin_user_pb2.UserActivation:
        view = await self._identity.activate_user(request.user_id)
        return admin_user_pb2.UserActivation(id=view.id, is_active=view.is_active)

    async def DeactivateUser(
        self, request: admin_user_pb2.DeactivateUserRequest, context: Any
    ) -> admin_user_pb2.UserActivation:
        view = await self._identity.deactivate_user(current_principal(), request.user_id)
        return admin_user_pb2.UserActivation(id=view.id, is_active=view.is_active)


def permission_message(permission: PermissionView) -> role_pb2.Permission:
    return role_pb2.Permission(
        id=permission.id,
        name=permission.name,
        description=permission.description,
        resource=permission.resource,
        action=permission.action,
    )


def role_message(view: RoleView) -> role_pb2.Role:
    return role_pb2.Role(
        id=view.id,
        name=view.name,
        description=view.description,
        created_at=timestamp(view.created_at),
        permissions=[permission_message(permission) for permission in view.permissions],
        users_count=view.users_count,
    )


class RoleServicer(role_pb2_grpc.RoleServiceServicer):
    def __init__(self, roles: RoleAdministration) -> None:
        self._roles = roles

    async def ListRoles(self, request: role_pb2.ListRolesRequest, context: Any) -> role_pb2.ListRolesResponse:
        page = await self._roles.list_roles(skip=request.skip, offset=request.offset, limit=request.limit)
        return role_pb2.ListRolesResponse(
            total=page.total,
            skip=page.skip,
            limit=page.limit,
            items=[role_message(view) for view in page.items],
            has_more=page.has_more,
        )

    async def CreateRole(self, request: role_pb2.CreateRoleRequest, context: Any) -> role_pb2.Role:
        view = await self._roles.create_role(
            current_principal(),
            name=request.name,
            description=request.description,
            permissions=list(request.permissions),
        )
        return role_message(view)

    async def GetRole(self, request: role_pb2.GetRoleRequest, context: Any) -> role_pb2.Role:
        return role_message(await self._roles.get_role(request.role_id))

    async def UpdateRole(self, request: role_pb2.UpdateRoleRequest, context: Any) -> role_pb2.Role:
        view = await self._roles.update_role(
            current_principal(),
            request.role_id,
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
            permissions=list(request.permissions) if request.set_permissions or request.permissions else None,
        )
        return role_message(view)

    async def DeleteRole(self, request: role_pb2.DeleteRoleRequest, context: Any) -> role_pb2.DeleteRoleResponse:
        await self._roles.delete_role(request.role_id)
        return role_pb2.DeleteRoleResponse()

    async def ListPermissions(
        self, request: role_pb2.ListPermissionsRequest, context: Any
    ) -> role_pb2.ListPermissionsResponse:
        page = await self._roles.list_permissions(skip=request.skip, offset=request.offset, limit=request.limit)
        return role_pb2.ListPermissionsResponse(
            total=page.total,
            skip=page.skip,
            limit=page.limit,
            items=[permission_message(p) for p in page.items],
            has_more=page.has_more,
        )

    async def CreatePermission(self, request: role_pb2.CreatePermissionRequest, context: Any) -> role_pb2.Permission:
        permission = await self._roles.create_permission(
            name=request.name, description=request.description, resource=request.resource, action=request.action
        )
        return permission_message(permission)


def session_summary(view: SessionView) -> session_pb2.SessionSummary:
    return session_pb2.SessionSummary(
        id=view.id,
        client=view.client,
        start_ts=timestamp(view.created_at),
        last_activity=timestamp(view.last_activity),
        active=view.active,
        user_id=view.user_id,
        ip_address=view.ip_address,
    )


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def ListSessions(
        self, request: session_pb2.ListSessionsRequest, context: Any
    ) -> session_pb2.ListSessionsResponse:
        views = await self._identity.list_sessions(
            current_principal(), include_inactive=request.include_inactive, all_users=request.all
        )
        return session_pb2.ListSessionsResponse(sessions=[session_summary(view) for view in views])

    async def TerminateSession(
        self, request: session_pb2.TerminateSessionRequest, context: Any
    ) -> session_pb2.TerminateSessionResponse:
        ended = await self._identity.terminate_session(current_principal(), request.id)
        return session_pb2.TerminateSessionResponse(id=ended.id, active=ended.active)

    async def GetCurrentSession(
        self, request: session_pb2.GetCurrentSessionRequest, context: Any
    ) -> session_pb2.CurrentSession:
        view = await self._identity.get_current_session(
            current_principal(), requested=current_call().credentials.session_id
        )
        return session_pb2.CurrentSession(
            id=view.id,
            user_id=view.user_id,
            expires_at=timestamp(view.expires_at),
            metadata=session_pb2.SessionMetadata(user_agent=view.client, ip_address=view.ip_address),
            created_at=timestamp(view.created_at),
            last_activity=timestamp(view.last_activity),
        )


def api_key_message(view: ApiKeyView) -> api_key_pb2.ApiKey:
    return api_key_pb2.ApiKey(
        id=view.id,
        name=view.name,
        prefix=view.prefix,
        scopes=view.scopes,
        created_at=timestamp(view.created_at),
        expires_at=timestamp(view.expires_at),
        last_used_at=timestamp(view.last_used_at),
        active=view.active,
    )


class ApiKeyServicer(api_key_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    async def CreateApiKey(
        self, request: api_key_pb2.CreateApiKeyRequest, context: Any
    ) -> api_key_pb2.CreateApiKeyResponse:
        created = await self._keys.create(
            current_principal(), name=request.name, scopes=list(request.scopes), expires_in_days=request.expires_in_days
        )
        return api_key_pb2.CreateApiKeyResponse(api_key=api_key_message(created.key), key=created.secret)

    async def ListApiKeys(
        self, request: api_key_pb2.ListApiKeysRequest, context: Any
    ) -> api_key_pb2.ListApiKeysResponse:
        views = await self._keys.list(current_principal(), include_revoked=request.include_revoked)
        return api_key_pb2.ListApiKeysResponse(items=[api_key_message(view) for view in views], total=len(views))

    async def RevokeApiKey(
        self, request: api_key_pb2.RevokeApiKeyRequest, context: Any
    ) -> api_key_pb2.RevokeApiKeyResponse:
        await self._keys.revoke(current_principal(), request.id)
        return api_key_pb2.RevokeApiKeyResponse()
