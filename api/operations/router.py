from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

router = Router()


def health_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("")
