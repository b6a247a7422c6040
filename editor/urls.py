from django.urls import path

from editor import batch_views, edit_views, views

app_name = "editor"

urlpatterns = [
    path("", views.upload_page, name="upload"),
    path("upload/", views.upload, name="upload-file"),
    path("gallery/", views.gallery, name="gallery"),
    path("images/delete-all/", views.delete_all, name="delete-all"),
    path("images/zip/", batch_views.zip_download, name="zip"),
    path("images/<uuid:image_id>/", views.image_page, name="image"),
    path("images/<uuid:image_id>/delete/", views.delete, name="delete"),
    path("images/<uuid:image_id>/rerun/", views.rerun, name="rerun"),
    path("images/<uuid:image_id>/background/", views.upload_background, name="background"),
    path("images/<uuid:image_id>/edits/", edit_views.save, name="edits"),
    path("images/<uuid:image_id>/download/", views.download, name="download"),
    path("images/<uuid:image_id>/files/<str:name>", views.image_file, name="image-file"),
    path("jobs/<uuid:job_id>/status/", views.job_status, name="job-status"),
    path("jobs/<uuid:job_id>/files/<str:name>", views.job_file, name="job-file"),
]
