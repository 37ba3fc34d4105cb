"""Admins manage users and their one role."""

import pytest

from dispatcher.roles import role_of


def test_it_creates_a_user_with_a_role(panel_admin, django_user_model, redis):
    assert (
        panel_admin.post("/config/users/", {"username": "carol", "password": "long-enough", "role": "operator"}).status_code
        == 302
    )
    assert role_of(django_user_model.objects.get(username="carol")) == "operator"


def test_it_refuses_a_taken_name_on_the_field(panel_admin, viewer, redis):
    html = panel_admin.post(
        "/config/users/", {"username": "Viewer", "password": "long-enough", "role": "viewer"}
    ).content.decode()
    assert '<p class="field-error" data-field="username">A user with this name exists.</p>' in html


def test_it_changes_a_role_and_deactivates(panel_admin, viewer, django_user_model, redis):
    panel_admin.post(f"/config/users/{viewer.id}/role/", {"role": "admin"})
    viewer = django_user_model.objects.get(pk=viewer.pk)
    assert list(viewer.groups.values_list("name", flat=True)) == ["admin"] and not viewer.is_active
    assert role_of(viewer) is None  # an inactive user has no role at all
    panel_admin.post(f"/config/users/{viewer.id}/role/", {"role": "viewer", "active": "on"})
    viewer = django_user_model.objects.get(pk=viewer.pk)
    assert role_of(viewer) == "viewer" and viewer.is_active


def test_an_admin_cannot_demote_themselves(panel_admin, admin_user, django_user_model, redis):
    panel_admin.post(f"/config/users/{admin_user.id}/role/", {"role": "viewer", "active": "on"})
    assert role_of(django_user_model.objects.get(pk=admin_user.pk)) == "admin"


def test_it_refuses_operator(client, operator, viewer, redis):
    client.force_login(operator)
    assert client.post(f"/config/users/{viewer.id}/role/", {"role": "admin", "active": "on"}).status_code == 403


def test_a_role_change_is_in_the_audit_log(db, admin_user, viewer):
    from dispatcher.models import StateEvent
    from dispatcher.services import set_user_role

    set_user_role(viewer, "operator", actor=admin_user)
    event = StateEvent.objects.get(subject="updated user viewer")
    assert (event.old, event.new, event.actor) == ("viewer", "operator", admin_user)
    set_user_role(viewer, "operator", active=False, actor=admin_user)
    assert StateEvent.objects.filter(subject="updated user viewer", new="operator (deactivated)").exists()


@pytest.fixture
def plain_admin(db, django_user_model):
    """In the admin group, not a superuser."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("plainadmin", password="pw-plainadmin")
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


@pytest.fixture
def root(db, django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")


def test_a_superuser_demoted_in_the_panel_can_only_view(panel_admin, root, django_user_model, redis):
    panel_admin.post(f"/config/users/{root.id}/role/", {"role": "viewer", "active": "on"})
    root = django_user_model.objects.get(pk=root.pk)
    assert role_of(root) == "viewer" and not root.is_superuser and not root.is_staff


def test_the_audit_log_says_what_a_demotion_did(panel_admin, root, redis):
    from dispatcher.models import StateEvent

    panel_admin.post(f"/config/users/{root.id}/role/", {"role": "operator", "active": "on"})
    event = StateEvent.objects.get(subject="updated user root")
    assert (event.old, event.new) == ("superuser", "operator")


def test_an_admin_cannot_deactivate_or_demote_a_superuser(client, plain_admin, root, django_user_model, redis):
    from dispatcher.models import StateEvent

    client.force_login(plain_admin)
    response = client.post(f"/config/users/{root.id}/role/", {"role": "viewer"}, follow=True)
    assert b"root is a superuser; only a superuser can change their role or deactivate them." in response.content
    root = django_user_model.objects.get(pk=root.pk)
    assert root.is_active and root.is_superuser
    assert not StateEvent.objects.filter(subject="updated user root").exists()


def test_the_users_page_offers_no_change_it_would_refuse(client, plain_admin, root, redis):
    client.force_login(plain_admin)
    html = client.get("/config/users/").content.decode()
    assert f'action="/config/users/{root.id}/role/"' not in html
    assert "only a superuser can change a superuser" in html
