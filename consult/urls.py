from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from consult import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("consultations/", views.consultation_home, name="consultation-home"),
    path("consultations/incoming/", views.incoming, name="consultation-incoming"),
    path("consultations/requests/", views.request_list, name="consultation-requests"),
    path("consultations/new/<str:study_uid>/", views.consultation_new, name="consultation-new"),
    path("consultations/<uuid:consultation_uuid>/", views.consultation_detail, name="consultation-detail"),
    path("consultations/<uuid:consultation_uuid>/state/", views.consultation_state, name="consultation-state"),
    path(
        "consultations/<uuid:consultation_uuid>/actions/<str:action>/",
        views.consultation_transition,
        name="consultation-transition",
    ),
    path("consultations/<uuid:consultation_uuid>/comments/", views.comment_create, name="consultation-comment"),
    path(
        "consultations/<uuid:consultation_uuid>/key-images/<int:key_image_id>.jpg",
        views.key_image,
        name="consultation-key-image",
    ),
    path("consultations/<uuid:consultation_uuid>/report/", views.report_edit, name="report-edit"),
    path("consultations/<uuid:consultation_uuid>/report/draft/", views.report_draft_save, name="report-draft"),
    path("consultations/<uuid:consultation_uuid>/report/sign/", views.report_sign, name="report-sign"),
    path("consultations/<uuid:consultation_uuid>/report/addendum/", views.report_addendum, name="report-addendum"),
    path("consultations/<uuid:consultation_uuid>/report/print/", views.report_print, name="report-print"),
    path("consultations/<uuid:consultation_uuid>/report.pdf", views.report_pdf, name="report-pdf"),
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/unread/", views.notification_unread, name="notification-unread"),
    path("notifications/read/", views.notification_read_all, name="notification-read-all"),
]
