from ninja import Router

auth_router = Router()
users_router = Router()
roles_router = Router()
permissions_router = Router()
